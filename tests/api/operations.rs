//! Operator-facing hardening: `/metrics` names, per-key rate limits with
//! 429 + Retry-After, the CORS allow-list, and introspection/GraphiQL defaults that
//! follow the listen address.

use brokergraph::config::{Config, Scope};
use serde_json::json;

use crate::common::{self, spawn_app, spawn_app_with, AppOptions};

#[tokio::test]
async fn metrics_expose_the_documented_names() {
    let app = spawn_app().await;
    app.data("query Dashboard { account { cash } }", json!({}))
        .await;
    app.graphql("query Broken { nope }", json!({})).await;
    let text = app.metrics().await;
    for name in [
        "brokergraph_graphql_requests_total{operation=\"Dashboard\",outcome=\"ok\"} 1",
        "brokergraph_graphql_requests_total{operation=\"Broken\",outcome=\"GRAPHQL_VALIDATION_FAILED\"} 1",
        "brokergraph_graphql_request_duration_seconds_bucket{le=\"+Inf\"} 2",
        "brokergraph_graphql_request_duration_seconds_count 2",
        "brokergraph_broker_calls_total{route=",
        "brokergraph_broker_requests_total{route=\"account\",status=\"ok\",account=\"default\"}",
        "brokergraph_broker_request_duration_seconds_count",
        "brokergraph_broker_rate_limit_remaining",
        "brokergraph_broker_rate_limited_total",
        "brokergraph_cache_hits_total",
        "brokergraph_cache_misses_total",
        "brokergraph_cache_stale_total",
        "brokergraph_throttle_waits_total",
        "brokergraph_breaker_state{account=\"default\",state=\"closed\"} 1",
        "brokergraph_idempotency_replays_total 0",
        "brokergraph_idempotency_conflicts_total 0",
        "brokergraph_broker_request_duration_seconds_count{route=\"account\",account=\"default\"} 1",
        "brokergraph_build_info{version=",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_others_are_untouched() {
    let app = spawn_app_with(AppOptions {
        keys: vec![
            ("bot", "bot-key", vec![Scope::Read]),
            ("ui", "ui-key", vec![Scope::Read]),
        ],
        tweak: |c: &mut Config| {
            c.rate_limit.burst = 3;
            c.rate_limit.per_key.insert("bot".into(), 6);
        },
        ..AppOptions::default()
    })
    .await;
    let send = |key: &'static str| {
        app.http
            .post(app.url("/graphql"))
            .bearer_auth(key)
            .json(&json!({ "query": "{ account { cash } }" }))
            .send()
    };
    for left in ["2", "1", "0"] {
        let resp = send("bot-key").await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-ratelimit-remaining"], left);
    }
    let resp = send("bot-key").await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=10).contains(&retry),
        "6/min: a token every 10 s, got {retry}"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], retry);
    assert!(!body.to_string().contains("bot-key"));
    // Another key has its own bucket.
    assert_eq!(send("ui-key").await.unwrap().status(), 200);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("brokergraph_rate_limited_total{key_id=\"bot\"} 1"),
        "{metrics}"
    );
    // Refused before the request was read: counted among the answers all the same.
    assert!(
        metrics.contains(
            "brokergraph_graphql_requests_total{operation=\"anonymous\",outcome=\"RATE_LIMITED\"} 1"
        ),
        "{metrics}"
    );
}

/// A browser's CORS preflight of a POST with a bearer, from `origin`.
pub(crate) async fn preflight(app: &common::TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_allows_listed_origins_only() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.server.cors_origins = vec!["https://app.example".into()],
        ..AppOptions::default()
    })
    .await;
    let ok = preflight(&app, "https://app.example").await;
    assert!(ok.status().is_success());
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let refused = preflight(&app, "https://evil.example").await;
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // Default: no origins, no CORS headers at all.
    let app = spawn_app().await;
    let none = preflight(&app, "https://app.example").await;
    assert!(none.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn cors_star_is_refused_when_keys_are_configured() {
    let toml = "[server]\ncors_origins = [\"*\"]\n[[keys]]\nid = \"a\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nscopes = [\"read\"]\n";
    let path = std::env::temp_dir().join(format!("bg-cors-{}.toml", std::process::id()));
    std::fs::write(&path, toml).unwrap();
    let cli = <brokergraph::cli::Cli as clap::Parser>::parse_from([
        "brokergraph",
        "--config",
        path.to_str().unwrap(),
    ]);
    let err = Config::load_from(&cli, &Default::default()).unwrap_err();
    assert_eq!(err.key(), Some("server.cors_origins"), "{err}");
    let _ = std::fs::remove_file(path);
}

const INTROSPECT: &str = "{ __schema { queryType { name } } }";

#[tokio::test]
async fn introspection_and_graphiql_follow_the_listen_address_and_switch() {
    // Loopback: both on by default.
    let app = spawn_app().await;
    app.data(INTROSPECT, json!({})).await;
    // Public address (keys required there): both off by default.
    let public = spawn_app_with(AppOptions {
        keys: vec![("k", "k-key", vec![Scope::Read])],
        use_key: Some("k-key"),
        tweak: |c| c.listen = "0.0.0.0:0".parse().unwrap(),
        ..AppOptions::default()
    })
    .await;
    let body = public.graphql(INTROSPECT, json!({})).await;
    assert_eq!(
        body["data"]["__schema"],
        json!(null),
        "introspection must be off: {body}"
    );
    let page = public
        .http
        .get(public.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    // Switched on explicitly on a public address.
    let on = spawn_app_with(AppOptions {
        keys: vec![("k", "k-key", vec![Scope::Read])],
        use_key: Some("k-key"),
        tweak: |c| {
            c.listen = "0.0.0.0:0".parse().unwrap();
            c.server.introspection = Some(true);
        },
        ..AppOptions::default()
    })
    .await;
    on.data(INTROSPECT, json!({})).await;
}

/// A broker call has one name (`broker::Route`) whatever the dialect: the cache's
/// per-route stats key, the `route` label of the calls the cache let through and of
/// the adapter's HTTP attempts are the same value, for Alpaca's `/v2` as for `/v1`.
async fn a_broker_call_has_one_name_in_stats_and_metrics(dialect: broker_sim::Dialect) {
    let app = common::spawn_app_in(dialect).await;
    app.data(
        "{ account { cash } orders(first: 1) { nodes { id } } instruments(first: 1) { nodes { symbol } } }",
        json!({}),
    )
    .await;
    let stats: std::collections::BTreeSet<String> =
        app.cache.snapshot().broker_calls.into_keys().collect();
    let text = app.metrics().await;
    let labels = |metric: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(metric)?.strip_prefix("{route=\""))
            .filter_map(|rest| rest.split('"').next().map(str::to_string))
            .collect()
    };
    let expected: std::collections::BTreeSet<String> = ["account", "instruments", "orders"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(stats, expected, "{dialect:?}: cache stats keys");
    assert_eq!(
        labels("brokergraph_broker_calls_total"),
        expected,
        "{dialect:?}"
    );
    assert_eq!(
        labels("brokergraph_broker_requests_total"),
        expected,
        "{dialect:?}"
    );
}

crate::in_both_dialects!(a_broker_call_has_one_name_in_stats_and_metrics);
