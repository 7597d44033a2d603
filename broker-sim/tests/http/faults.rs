//! Fault injection: each kind as a client sees it, counted in stats, seeded.

use std::time::{Duration, Instant};

use broker_sim::SimConfig;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn status_faults_answer_in_the_envelope_with_rate_headers() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    sim.set_faults(
        json!({"rules": [{"route": "GET /v1/account", "kind": "status", "status": 502}]}),
    )
    .await;
    let r = api.get("/v1/account").await;
    assert_eq!((r.status, r.code()), (502, "bad_gateway"));
    assert!(r.headers.contains_key("x-ratelimit-limit"));
    assert_eq!(
        api.get("/v1/positions").await.status,
        200,
        "other routes are untouched"
    );
    sim.set_faults(json!({"rules": [{"route": "*", "kind": "status", "status": 429}]}))
        .await;
    let r = api.get("/v1/positions").await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=60).contains(&retry),
        "like the real limiter: until the window ends"
    );
    sim.set_faults(json!({"rules": [{"kind": "status", "status": 429, "retry_after": 2}]}))
        .await;
    let r = api.get("/v1/positions").await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    let s = sim.stats().await;
    assert_eq!(s.count_status("GET /v1/account", 502), 1);
    assert_eq!(s.rate_limited, 2, "injected 429s count as 429s sent");
    assert_eq!(s.faults_injected["status"], 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_the_answer() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    sim.set_faults(json!({"rules": [{"route": "GET /v1/account", "kind": "latency", "ms": 150, "jitter_ms": 20}]}))
        .await;
    let started = Instant::now();
    let r = api.get("/v1/account").await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(sim.stats().await.faults_injected["latency"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_drops_the_connection_without_a_response() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    sim.set_faults(json!({"rules": [{"route": "GET /v1/account", "kind": "reset"}]}))
        .await;
    let err = api
        .http
        .get(format!("{}/v1/account", api.base))
        .bearer_auth(KEY)
        .send()
        .await
        .expect_err("no HTTP response at all");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    assert_eq!(
        sim.stats().await.count_outcome("GET /v1/account", "reset"),
        1
    );
    sim.clear_faults().await;
    assert_eq!(
        api.get("/v1/account").await.status,
        200,
        "the server is fine afterwards"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_holds_the_request_until_the_client_gives_up_and_does_not_block_shutdown() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    sim.set_faults(json!({"rules": [{"route": "GET /v1/positions", "kind": "hang"}]}))
        .await;
    let err = api
        .http
        .get(format!("{}/v1/positions", api.base))
        .bearer_auth(KEY)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err:?}");
    // A client that waits forever is released by shutdown.
    let waiting = {
        let http = api.http.clone();
        let url = format!("{}/v1/positions", api.base);
        tokio::spawn(async move { http.get(url).bearer_auth(KEY).send().await })
    };
    while sim.stats().await.count_outcome("GET /v1/positions", "hang") < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.shutdown().await;
    assert!(waiting.await.unwrap().is_err());
}

#[tokio::test]
async fn commit_then_fail_creates_the_order_and_a_retry_with_the_key_finds_it() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_faults(
        json!({"rules": [{"route": "POST /v1/orders", "kind": "commit_then_fail", "as": "503"}]}),
    )
    .await;
    let r = api.order(market(&sym, "buy", "2"), Some("ctf-1")).await;
    assert_eq!((r.status, r.code()), (503, "service_unavailable"));
    assert_eq!(
        sim.stats().await.orders_created,
        1,
        "the order exists although the answer was lost"
    );

    sim.set_faults(
        json!({"rules": [{"route": "POST /v1/orders", "kind": "commit_then_fail", "as": "reset"}]}),
    )
    .await;
    let body = market(&sym, "buy", "3");
    let err = api
        .http
        .post(format!("{}/v1/orders", api.base))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "ctf-2")
        .json(&body)
        .send()
        .await
        .expect_err("connection dropped");
    assert!(err.status().is_none(), "{err:?}");
    sim.clear_faults().await;

    let retry = api.order(market(&sym, "buy", "2"), Some("ctf-1")).await;
    assert_eq!(
        (retry.status, retry.header("idempotent-replayed")),
        (200, Some("true"))
    );
    let retry = api.order(body, Some("ctf-2")).await;
    assert_eq!(
        (retry.status, retry.body["quantity"].as_str()),
        (200, Some("3"))
    );
    let s = sim.stats().await;
    assert_eq!(s.orders_created, 2);
    assert_eq!(s.count_status("POST /v1/orders", 503), 1);
    assert_eq!(s.count_outcome("POST /v1/orders", "reset"), 1);
    assert_eq!(
        api.get("/v1/positions").await.body["data"][0]["quantity"],
        "5"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_dice_are_seeded_so_a_run_repeats() {
    async fn run(seed: u64) -> Vec<u16> {
        let profile = json!({"seed": seed, "rules": [{"route": "*", "kind": "status", "status": 500, "rate": 0.5}]});
        let cfg = SimConfig {
            faults: Some(serde_json::from_value(profile).unwrap()),
            ..config()
        };
        let sim = broker_sim::spawn(cfg).await.unwrap();
        let api = Api::new(&sim);
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(api.get("/v1/account").await.status);
        }
        sim.shutdown().await;
        out
    }
    let a = run(7).await;
    assert_eq!(a, run(7).await);
    assert_ne!(a, run(8).await);
    let failures = a.iter().filter(|&&s| s == 500).count();
    assert!((5..=35).contains(&failures), "about half fail: {failures}");
}

#[tokio::test]
async fn the_profile_is_managed_over_http_and_validated() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let profile = json!({"seed": 7, "rules": [
        {"route": "POST /v1/orders", "kind": "commit_then_fail", "rate": 0.5, "as": "503"},
        {"route": "*", "kind": "status", "status": 503, "rate": 0.2},
        {"route": "GET /v1/account", "kind": "latency", "ms": 20, "jitter_ms": 5},
        {"route": "*", "kind": "hang", "rate": 0.05},
        {"route": "*", "kind": "reset", "rate": 0.05}]});
    let r = api.admin(Method::POST, "/sim/faults", Some(profile)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        api.admin(Method::GET, "/sim/faults", None).await.body["rules"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let bad = json!({"rules": [{"route": "GET /v1/acount", "kind": "reset"}]});
    let r = api.admin(Method::POST, "/sim/faults", Some(bad)).await;
    assert_eq!((r.status, r.code()), (400, "invalid_fault_profile"));
    let bad = json!({"rules": [{"kind": "explode"}]});
    assert_eq!(
        api.admin(Method::POST, "/sim/faults", Some(bad))
            .await
            .status,
        400
    );
    assert_eq!(
        api.admin(Method::DELETE, "/sim/faults", None).await.status,
        200
    );
    for _ in 0..20 {
        assert_eq!(api.get("/v1/account").await.status, 200);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    sim.set_faults(json!({"rules": [{"route": "GET /v1/account", "kind": "latency", "ms": 200}]}))
        .await;
    let in_flight = {
        let http = api.http.clone();
        let url = format!("{}/v1/account", api.base);
        tokio::spawn(async move { http.get(url).bearer_auth(KEY).send().await })
    };
    while !sim.stats().await.faults_injected.contains_key("latency") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let base = sim.base_url();
    sim.shutdown().await;
    assert_eq!(in_flight.await.unwrap().unwrap().status(), 200);
    assert!(
        reqwest::get(format!("{base}/openapi.json")).await.is_err(),
        "no longer listening"
    );
}
