//! The fixed-window rate limit per API key and its headers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker_sim::SimConfig;

use crate::helpers::*;

fn limited(limit: u32, window: u64) -> SimConfig {
    SimConfig {
        rate_limit: limit,
        rate_window_secs: window,
        ..config()
    }
}

#[tokio::test]
async fn every_response_counts_down_and_the_excess_is_429() {
    let sim = broker_sim::spawn(limited(3, 60)).await.unwrap();
    let api = Api::new(&sim);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut remaining = Vec::new();
    for path in [
        "/v1/account",
        "/v1/orders/00000000-0000-4000-8000-000000000000",
        "/v1/positions",
    ] {
        let r = api.get(path).await;
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(
            reset > now && reset <= now + 61,
            "reset {reset} is unix seconds within the window"
        );
        remaining.push(r.header("x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(
        remaining,
        ["2", "1", "0"],
        "errors (the 404) count and carry headers too"
    );
    let r = api.get("/v1/account").await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    // Another key has its own window; the control plane and the spec are not limited.
    assert_eq!(
        Api::with_key(&sim, "other-key")
            .get("/v1/account")
            .await
            .status,
        200
    );
    assert_eq!(api.get("/openapi.json").await.status, 200);
    assert_eq!(
        api.admin(reqwest::Method::GET, "/sim/stats", None)
            .await
            .status,
        200
    );
    let s = sim.stats().await;
    assert_eq!(s.rate_limited, 1);
    assert_eq!(s.count_status("GET /v1/account", 429), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_window_reopens_after_retry_after() {
    let sim = broker_sim::spawn(limited(1, 1)).await.unwrap();
    let api = Api::new(&sim);
    assert_eq!(api.get("/v1/account").await.status, 200);
    let r = api.get("/v1/account").await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = api.get("/v1/account").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    sim.shutdown().await;
}
