//! Rate-limit storms: many clients poll the dashboard every 100 ms while orders are
//! submitted, against a broker-sim with a small budget. Nobody sees an error, the
//! broker never sends a 429, answers are never older than `stale_ttl`, and every
//! submit goes through.
//!
//! The suite runs a scaled-down storm (20 clients, 6 s, 20 requests per 2 s); the
//! issue's full one (50 clients, 30 s, 20 per 10 s, 20 submits) is ignored by
//! default: `cargo test -p brokergraph --test api full_storm -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use brokergraph::cache::CacheStats;
use brokergraph::config::Config;
use chrono::Utc;
use serde_json::{json, Value};

use super::support::{as_ofs, cheap_symbol, market_buy, ttls, DASHBOARD, SUBMIT};
use crate::common::{sim_config, spawn_app_with, AppOptions, TestApp};

const POLL: Duration = Duration::from_millis(100);
const STALE_TTL_MS: u64 = 60_000;

struct Storm {
    clients: usize,
    length: Duration,
    submits: usize,
    rate_limit: u32,
    window_secs: u64,
    /// Tells the gateway the same budget up front, and any TTLs of the scenario.
    tweak: fn(&mut Config),
    dialect: broker_sim::Dialect,
}

/// Polls until the storm is over; returns every body it got and when.
async fn poll(app: &TestApp, length: Duration) -> Vec<(chrono::DateTime<Utc>, Value)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < length {
        let body = app.graphql(DASHBOARD, json!({})).await;
        seen.push((Utc::now(), body));
        tokio::time::sleep(POLL).await;
    }
    seen
}

/// Submits at an even pace over the storm; returns each answer and how long it took.
async fn submit_evenly(app: &TestApp, symbol: &str, storm: &Storm) -> Vec<(Duration, Value)> {
    let mut results = Vec::new();
    for _ in 0..storm.submits {
        tokio::time::sleep(storm.length / (storm.submits as u32 + 1)).await;
        let started = Instant::now();
        let body = app.graphql(SUBMIT, market_buy(symbol, "1")).await;
        results.push((started.elapsed(), body));
    }
    results
}

async fn run(storm: Storm) -> CacheStats {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            positions: 5,
            rate_limit: storm.rate_limit,
            rate_window_secs: storm.window_secs,
            dialect: storm.dialect,
            ..sim_config()
        },
        tweak: storm.tweak,
        ..AppOptions::default()
    })
    .await;
    let symbol = cheap_symbol(&app).await;

    let pollers = futures::future::join_all((0..storm.clients).map(|_| poll(&app, storm.length)));
    let (polled, submitted) = tokio::join!(pollers, submit_evenly(&app, &symbol, &storm));

    let stats = app.stats().await;
    assert_eq!(stats.rate_limited, 0, "the broker sent 429s: {stats:?}");
    let mut answers = 0;
    for (at, body) in polled.iter().flatten() {
        answers += 1;
        assert!(
            body.get("errors").is_none(),
            "a client saw an error: {body:#}"
        );
        let mut stamps = Vec::new();
        as_ofs(&body["data"], &mut stamps);
        assert!(!stamps.is_empty());
        for stamp in stamps {
            let age = (*at - stamp).num_milliseconds();
            assert!(age <= STALE_TTL_MS as i64, "asOf {age} ms old: {body:#}");
        }
    }
    let mut slowest = Duration::ZERO;
    for (took, body) in &submitted {
        let payload = &body["data"]["submitOrder"];
        assert!(body.get("errors").is_none(), "{body:#}");
        assert_eq!(payload["userErrors"], json!([]), "{body:#}");
        assert!(payload["order"]["brokerOrderId"].is_string(), "{body:#}");
        slowest = slowest.max(*took);
    }
    assert_eq!(stats.orders_created, storm.submits as u64);
    let cache = app.cache.snapshot();
    eprintln!(
        "storm: {answers} answers, {} broker calls, slowest submit {slowest:?}, {cache:?}",
        cache.total_broker_calls()
    );
    // The storm happened: every client polled a few times at least (how often depends
    // on the machine).
    assert!(answers >= storm.clients * 3, "{answers} answers");
    assert_eq!(cache.broker_429s, 0);
    cache
}

fn budget(c: &mut Config, requests: u32, window_secs: u64) {
    c.throttle.requests = requests;
    c.throttle.window = Duration::from_secs(window_secs);
    c.cache.stale_ttl = Duration::from_millis(STALE_TTL_MS);
}

/// Also against broker-sim's Alpaca dialect (see `crate::in_both_dialects!` in cache.rs).
pub(crate) async fn a_polling_storm_never_reaches_the_brokers_rate_limit(
    dialect: broker_sim::Dialect,
) {
    let cache = run(Storm {
        dialect,
        clients: 20,
        length: Duration::from_secs(6),
        submits: 6,
        rate_limit: 20,
        window_secs: 2,
        tweak: |c| {
            budget(c, 20, 2);
            // Short TTLs, so the pollers want more than the budget allows.
            ttls(c, 250);
            c.cache.instruments_ttl = Duration::from_millis(300_000);
        },
    })
    .await;
    // The pollers wanted more than the budget: the throttle said no, the cache answered.
    assert!(
        cache.throttle_refusals > 0 && cache.stale_served > 0,
        "{cache:?}"
    );
}

#[tokio::test]
#[ignore = "30 s: the issue's full storm"]
async fn full_storm_of_the_issue() {
    run(Storm {
        dialect: broker_sim::Dialect::Generic,
        clients: 50,
        length: Duration::from_secs(30),
        submits: 20,
        rate_limit: 20,
        window_secs: 10,
        tweak: |c| budget(c, 20, 10),
    })
    .await;
}
