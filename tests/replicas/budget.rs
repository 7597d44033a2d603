//! The broker's budget across replicas: one budget in Redis keeps three replicas
//! under the broker's limit (what the replicas' shared L2 cache saves is measured in
//! `shared.rs`).

use std::time::{Duration, Instant};

use broker_sim::SimConfig;
use serde_json::{json, Value};

use crate::cluster::{self, Cluster};
use crate::common::sim_config;
use crate::helpers::{buy, cheap_symbol, DASHBOARD, SUBMIT};

/// Three replicas against broker-sim limited to 20 requests per 10 s. Pollers
/// want more than that (short TTLs), and other clients look up instruments
/// nobody has cached, all three replicas at once. Each replica alone would
/// spend the whole read share before the broker's headers told it about the
/// others; drawing from one budget in Redis, together they never exceed it. The
/// mutation reserve is kept across all three: a submit on each replica during the
/// storm goes through.
#[tokio::test]
async fn a_polling_storm_over_three_replicas_never_reaches_the_brokers_limit() {
    let sim = SimConfig {
        positions: 1,
        rate_limit: 20,
        rate_window_secs: 10,
        ..sim_config()
    };
    let env: cluster::Env = &[
        ("THROTTLE_REQUESTS", "20"),
        ("THROTTLE_WINDOW_SECS", "10"),
        ("THROTTLE_MAX_READ_WAIT_MS", "0"),
        ("CACHE_ACCOUNT_TTL_MS", "250"),
        ("CACHE_POSITIONS_TTL_MS", "250"),
        ("CACHE_ORDERS_TTL_MS", "250"),
        ("CACHE_INSTRUMENTS_TTL_MS", "300000"),
        ("CACHE_STALE_TTL_MS", "60000"),
    ];
    let cluster = Cluster::start(3, sim, env).await;
    let symbol = cheap_symbol(&cluster).await;
    for replica in 0..3 {
        cluster.data(replica, DASHBOARD, json!({})).await; // each has a value to fall back on
    }
    let symbols: Vec<String> = {
        let data = cluster
            .data(
                0,
                "{ instruments(first: 100) { nodes { symbol } } }",
                json!({}),
            )
            .await;
        data["instruments"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["symbol"].as_str().unwrap().to_string())
            .collect()
    };
    let length = Duration::from_secs(12);
    let poll = |client: usize| {
        let (cluster, symbols) = (&cluster, &symbols);
        async move {
            let replica = client % 3;
            let started = Instant::now();
            let (mut answered, mut errors, mut refused) = (0u32, Vec::new(), 0u32);
            let mut n = client;
            while started.elapsed() < length {
                let body = cluster.graphql(replica, DASHBOARD, json!({})).await;
                match body.get("errors") {
                    None => answered += 1,
                    Some(e) => errors.push(e.clone()),
                }
                // A cold read: nothing cached to fall back on.
                n = (n + 7) % symbols.len();
                let lookup = "query($s: String!) { instrument(symbol: $s) { symbol } }";
                let body = cluster
                    .graphql(replica, lookup, json!({ "s": symbols[n] }))
                    .await;
                match body["errors"][0]["extensions"]["code"].as_str() {
                    None => {}
                    Some("RATE_LIMITED") => refused += 1,
                    Some(_) => errors.push(body["errors"].clone()),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (answered, errors, refused)
        }
    };
    let submits = async {
        let mut answers = Vec::new();
        for replica in 0..3 {
            tokio::time::sleep(length / 4).await;
            let input = buy(uuid::Uuid::new_v4(), &symbol, "MARKET");
            answers.push(cluster.graphql(replica, SUBMIT, input).await);
        }
        answers
    };
    let (results, submitted) = tokio::join!(futures::future::join_all((0..15).map(poll)), submits);
    let stats = cluster.sim.stats().await;
    let answered: u32 = results.iter().map(|r| r.0).sum();
    let errors: Vec<&Value> = results.iter().flat_map(|r| &r.1).collect();
    let refused: u32 = results.iter().map(|r| r.2).sum();
    eprintln!(
        "storm over 3 replicas: {answered} dashboards, {refused} cold lookups refused, \
         broker 429s {}, broker requests {:?}",
        stats.rate_limited, stats.requests
    );
    assert_eq!(stats.rate_limited, 0, "the broker sent 429s: {stats:?}");
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
    for body in &submitted {
        let order = &body["data"]["submitOrder"]["order"];
        assert!(
            order["brokerOrderId"].is_string(),
            "a submit in the storm: {body:#}"
        );
    }
    assert_eq!(stats.orders_created, 3);
    // Every client kept getting answers all along (how many depends on the machine).
    let per_client: Vec<u32> = results.iter().map(|r| r.0).collect();
    assert!(
        per_client.iter().all(|&n| n >= 3),
        "dashboards per client: {per_client:?}"
    );
    assert!(refused > 0, "the storm never wanted more than the budget");
}
