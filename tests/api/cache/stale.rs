//! The broker goes down: cached reads keep working, marked stale, until `stale_ttl`.

use std::time::Duration;

use serde_json::{json, Value};

use super::support::ttls;
use crate::common::{sim_config, spawn_app_with, AppOptions, TestApp};

const QUERY: &str =
    "{ account { cash asOf } positions(first: 5) { nodes { symbol asOf instrument { symbol } } } }";

fn reads_down(app: &TestApp) -> Value {
    let rule = |route: &str| json!({ "route": app.route(route), "kind": "status", "status": 503 });
    json!({ "rules": [
        rule("GET /v1/account"), rule("GET /v1/positions"), rule("GET /v1/orders"),
        rule("GET /v1/instruments/{symbol}"), rule("GET /v1/instruments"),
    ] })
}

/// Also against broker-sim's Alpaca dialect (see `crate::in_both_dialects!` in cache.rs).
pub(crate) async fn broker_down_serves_stale_with_the_extension_then_broker_unavailable(
    dialect: broker_sim::Dialect,
) {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            positions: 3,
            dialect,
            ..sim_config()
        },
        tweak: |c| {
            ttls(c, 100);
            c.cache.stale_ttl = Duration::from_millis(1_500);
        },
        ..AppOptions::default()
    })
    .await;
    let warm = app.graphql(QUERY, json!({})).await;
    assert!(warm.get("errors").is_none(), "{warm:#}");
    assert!(warm.get("extensions").is_none(), "fresh: {warm:#}");

    app.sim.set_faults(reads_down(&app)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // past every TTL
    let stale = app.graphql(QUERY, json!({})).await;
    assert!(stale.get("errors").is_none(), "{stale:#}");
    assert_eq!(stale["data"], warm["data"], "same values, same asOf");
    let marks = stale["extensions"]["stale"]
        .as_array()
        .expect("extensions.stale");
    let resources: Vec<&str> = marks
        .iter()
        .map(|m| m["resource"].as_str().unwrap())
        .collect();
    assert!(resources.contains(&"account"), "{marks:?}");
    assert!(resources.contains(&"positions"), "{marks:?}");
    for mark in marks {
        let age = mark["ageSeconds"].as_f64().unwrap();
        assert!(age > 0.0 && age <= 1.5, "{mark}");
    }
    assert!(
        app.stats()
            .await
            .count_status(&app.route("GET /v1/account"), 503)
            >= 1
    );
    assert!(app.cache.snapshot().stale_served >= 2);

    tokio::time::sleep(Duration::from_millis(1_500)).await; // past stale_ttl
    let gone = app.graphql(QUERY, json!({})).await;
    assert_eq!(
        gone["errors"][0]["extensions"]["code"], "BROKER_UNAVAILABLE",
        "{gone:#}"
    );
}

#[tokio::test]
async fn a_broker_429_with_a_cached_value_is_stale_not_an_error() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| ttls(c, 100),
        ..AppOptions::default()
    })
    .await;
    let warm = app.data("{ account { cash asOf } }", json!({})).await;
    app.sim
        .set_faults(json!({ "rules": [{ "route": "GET /v1/account", "kind": "status", "status": 429, "retry_after": 30 }] }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = app.graphql("{ account { cash asOf } }", json!({})).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"], warm);
    assert_eq!(body["extensions"]["stale"][0]["resource"], "account");
    // The 429's Retry-After holds every later read on the cached value without asking.
    let asked = app.stats().await.count("GET /v1/account");
    for _ in 0..5 {
        let again = app.graphql("{ account { cash asOf } }", json!({})).await;
        assert!(again.get("errors").is_none(), "{again:#}");
    }
    assert_eq!(app.stats().await.count("GET /v1/account"), asked);
}
