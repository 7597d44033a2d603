//! Memory stays bounded under a long run. Ignored by default (it submits 100k orders);
//! run with `cargo test -p broker-sim --release --test http memory -- --ignored --nocapture`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use broker_sim::SimConfig;

use crate::helpers::*;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: submits 100k orders"]
async fn rss_after_100k_orders() {
    let total: usize = std::env::var("BROKER_SIM_MEM_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sim = broker_sim::spawn(SimConfig {
        rate_limit: u32::MAX,
        cash: "1000000000000.00".parse().unwrap(),
        ..config()
    })
    .await
    .unwrap();
    let api = Arc::new(Api::new(&sim));
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let start = rss_kib();
    println!("RSS after spawn: {} MiB", start / 1024);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (api, next, sym) = (api.clone(), next.clone(), sym.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    // Every order carries a key, so the key store is exercised too; half
                    // of them fill at once, the other half rest (a day limit far below the
                    // market) until the next simulated close, forced every 1000 orders.
                    let body = if n % 2 == 0 {
                        market(&sym, "buy", "1")
                    } else {
                        serde_json::json!({"symbol": sym, "side": "buy", "type": "limit", "quantity": "1", "limit_price": "0.01"})
                    };
                    let r = api.order(body, Some(&format!("mem-{n}"))).await;
                    assert_eq!(r.status, 201, "{}", r.body);
                    if n % 1000 == 999 {
                        api.admin(reqwest::Method::POST, "/sim/close", None).await;
                    }
                    if n % 20_000 == 19_999 {
                        println!("{} orders: RSS {} MiB", n + 1, rss_kib() / 1024);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let s = sim.stats().await;
    println!(
        "after {total} orders: RSS {} MiB (+{} MiB); stored orders {}, open {}, idempotency keys {}",
        rss_kib() / 1024,
        (rss_kib().saturating_sub(start)) / 1024,
        s.stored_orders,
        s.open_orders,
        s.idempotency_keys
    );
    assert_eq!(s.orders_created as usize, total);
    assert!(s.idempotency_keys <= 20_000);
    sim.shutdown().await;
}
