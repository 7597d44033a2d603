//! Broker calls per 1000 client queries at 1, 50 and 500 concurrent clients, for
//! docs/cache.md. Ignored by default (it measures, it does not check):
//! `cargo test -p brokergraph --test api cache::bench -- --ignored --nocapture`

use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde_json::json;

use crate::common::{sim_config, spawn_app_with, AppOptions};

const QUERIES: usize = 1000;
const DASHBOARD: &str = r#"{
  account { cash buyingPower equity asOf }
  positions(first: 20) { nodes { symbol quantity asOf instrument { symbol lotSize } } }
  orders(first: 20) { nodes { brokerOrderId status instrument { symbol } } }
}"#;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn broker_calls_per_1000_queries() {
    println!("| concurrent clients | queries | broker calls | per 1000 queries | wall time |");
    println!("|---|---|---|---|---|");
    for clients in [1usize, 50, 500] {
        let app = spawn_app_with(AppOptions {
            sim: broker_sim::SimConfig {
                positions: 5,
                ..sim_config()
            },
            ..AppOptions::default()
        })
        .await;
        let started = Instant::now();
        let errors = stream::iter(0..QUERIES)
            .map(|_| app.graphql(DASHBOARD, json!({})))
            .buffer_unordered(clients)
            .filter(|body| std::future::ready(body.get("errors").is_some()))
            .count()
            .await;
        let elapsed = started.elapsed();
        assert_eq!(errors, 0);
        let calls: u64 = app
            .stats()
            .await
            .requests
            .values()
            .flat_map(|by_status| by_status.values())
            .sum();
        println!(
            "| {clients} | {QUERIES} | {calls} | {:.1} | {:.2} s |",
            calls as f64 * 1000.0 / QUERIES as f64,
            elapsed.as_secs_f64()
        );
        eprintln!("{:?}", app.cache.snapshot());
    }
}
