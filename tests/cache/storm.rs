//! A rate-limit storm, scaled down to stay fast: broker-sim allows 20 requests per
//! 2 s window; 20 clients poll the dashboard every 100 ms for 6 s while orders are
//! submitted. Nobody sees an error, the broker never sends a 429, answers are
//! never older than `stale_ttl`, and every submit goes through.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

use crate::common::{sim_config, spawn_app_with, AppOptions, TestApp};
use crate::support::{as_ofs, cheap_symbol, market_buy, ttls, DASHBOARD, SUBMIT};

const CLIENTS: usize = 20;
const POLL: Duration = Duration::from_millis(100);
const STORM: Duration = Duration::from_secs(6);
const SUBMITS: usize = 6;
const STALE_TTL_MS: u64 = 10_000;

/// Polls until `STORM` is over; returns every body it got.
async fn poll(app: &TestApp) -> Vec<(chrono::DateTime<Utc>, Value)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < STORM {
        let body = app.graphql(DASHBOARD, json!({})).await;
        seen.push((Utc::now(), body));
        tokio::time::sleep(POLL).await;
    }
    seen
}

async fn submit_every_second(app: &TestApp, symbol: &str) -> Vec<Value> {
    let mut results = Vec::new();
    for _ in 0..SUBMITS {
        tokio::time::sleep(STORM / (SUBMITS as u32 + 1)).await;
        results.push(app.graphql(SUBMIT, market_buy(symbol, "1")).await);
    }
    results
}

#[tokio::test]
async fn a_polling_storm_never_reaches_the_brokers_rate_limit() {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            positions: 5,
            rate_limit: 20,
            rate_window_secs: 2,
            ..sim_config()
        },
        tweak: |c| {
            c.throttle.requests = 20;
            c.throttle.window_secs = 2;
            c.cache.stale_ttl_ms = STALE_TTL_MS;
            // Short TTLs so the pollers want more than the budget allows.
            ttls(c, 250);
            c.cache.instruments_ttl_ms = 300_000;
        },
        ..AppOptions::default()
    })
    .await;
    let symbol = cheap_symbol(&app).await;

    let pollers = futures::future::join_all((0..CLIENTS).map(|_| poll(&app)));
    let (polled, submitted) = tokio::join!(pollers, submit_every_second(&app, &symbol));

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
    for body in &submitted {
        let payload = &body["data"]["submitOrder"];
        assert!(body.get("errors").is_none(), "{body:#}");
        assert_eq!(payload["userErrors"], json!([]), "{body:#}");
        assert!(payload["order"]["brokerOrderId"].is_string(), "{body:#}");
    }
    assert_eq!(stats.orders_created, SUBMITS as u64);
    // Far fewer broker calls than answers: the cache absorbed the storm.
    let cache = app.cache.snapshot();
    eprintln!(
        "storm: {answers} answers, {} broker calls, {cache:?}",
        cache.total_broker_calls()
    );
    assert!(answers >= CLIENTS * 10, "{answers} answers");
    // The pollers wanted more than the budget: the throttle said no, the cache answered.
    assert!(
        cache.throttle_refusals > 0 && cache.stale_served > 0,
        "{cache:?}"
    );
    assert_eq!(cache.broker_429s, 0);
}
