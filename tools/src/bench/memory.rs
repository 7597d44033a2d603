//! `memory`: RSS at idle, and after many cached order reads over many orders. The
//! process holds broker-sim too, so the gateway's share is the growth during the
//! reads, after the orders were created at the broker.

use std::sync::Arc;
use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use futures::stream::{self, StreamExt};
use serde_json::json;

use super::load::{self, graphql_errors, Load};
use super::setup::{self, rss_mib, Stack};
use super::{Args, Row};

const ORDER: &str = "query Order($id: ID!) { order(id: $id) { id brokerOrderId symbol side \
  type quantity filledQuantity status createdAt asOf } }";

pub async fn memory(args: &Args) -> Vec<Row> {
    let n = args.orders;
    let stack = Stack::start(
        |s| {
            s.max_closed_orders = n + 1000;
            s.max_idempotency_keys = n + 1000;
        },
        // Room for every order: the default (10 000 entries per resource) would
        // measure eviction instead of what cached orders cost.
        |c| {
            c.cache.max_entries = (n as u64 + 1000).max(c.cache.max_entries);
            c.cache.max_bytes = c.cache.max_entries * 4096;
        },
    )
    .await;
    let symbols = stack.cheap_symbols(20).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = rss_mib();
    let stack = Arc::new(stack);
    let ids: Vec<String> = stream::iter(0..n)
        .map(|i| {
            let stack = stack.clone();
            let symbol = symbols[i % symbols.len()].clone();
            async move { stack.broker_buy(&symbol).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let with_orders = rss_mib();
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(
        ids.iter()
            .map(|id| {
                let gid = URL_SAFE_NO_PAD.encode(format!("Order:{id}"));
                setup::graphql_body(ORDER, json!({ "id": gid }))
            })
            .collect(),
    );
    let held = rss_mib();
    let connections = 32;
    let per = (args.reads / connections as u64).max(1);
    let pick = bodies.clone();
    let out = tokio::task::spawn_blocking({
        let addr = stack.gateway;
        move || {
            load::run(Load {
                addr,
                path: "/graphql",
                connections,
                duration: Duration::from_secs(120),
                // A fixed pseudo-random walk: every order is read, most many times.
                body: Some(Arc::new(move |conn, i| {
                    let x = (conn as u64) << 32 | i;
                    let x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    let x = (x ^ (x >> 29)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    let x = x ^ (x >> 32);
                    pick[(x % pick.len() as u64) as usize].clone()
                })),
                headers: Vec::new(),
                auth: None,
                max_per_connection: Some(per),
                is_error: graphql_errors,
            })
        }
    })
    .await
    .expect("load thread");
    let after = rss_mib();
    let cache = stack.cache.snapshot();
    if let Ok(stack) = Arc::try_unwrap(stack) {
        stack.stop().await;
    }
    vec![Row::new(
        "memory",
        "RSS idle / after MiB",
        format!("{idle:.0} / {after:.0}"),
        format!(
            "{n} orders at the broker (+{:.0} MiB, sim), cache sized to hold them all, then {} cached `order` reads ({:.0}/s, {} hits, {} misses): gateway +{:.0} MiB; {}",
            with_orders - idle,
            out.requests,
            out.rps(),
            cache.hits,
            cache.misses,
            after - held,
            if out.errors == 0 { "0 errors".to_string() } else { format!("{} errors, e.g. {:?}", out.errors, out.sample_error) }
        ),
    )]
}
