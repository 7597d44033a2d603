//! Single-flight, account-partitioned keys, and invalidation by mutations.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use brokergraph::broker::generic::{GenericBroker, GenericBrokerConfig};
use brokergraph::broker::transport::Transport;
use brokergraph::broker::Broker;
use brokergraph::cache::{CacheStore, CachedBroker};
use brokergraph::config::{CacheSettings, ThrottleSettings};
use brokergraph::secret::Secret;
use futures::future::join_all;
use serde_json::{json, Value};

use super::support::{cheap_symbol, market_buy, ttls, DASHBOARD, SUBMIT};
use crate::common::{sim_config, spawn_app_with, AppOptions, ADMIN};

/// Also against broker-sim's Alpaca dialect (see `crate::in_both_dialects!` in cache.rs).
pub(crate) async fn five_hundred_cold_dashboards_make_one_broker_call_per_resource(
    dialect: broker_sim::Dialect,
) {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            positions: 5,
            dialect,
            ..sim_config()
        },
        // Long TTLs: this test is about coalescing, not about how fast 500 requests run.
        tweak: |c| ttls(c, 60_000),
        ..AppOptions::default()
    })
    .await;
    let bodies: Vec<Value> = join_all((0..500).map(|_| app.graphql(DASHBOARD, json!({})))).await;
    for body in &bodies {
        assert!(body.get("errors").is_none(), "{body:#}");
        assert_eq!(
            body["data"], bodies[0]["data"],
            "everyone sees the same read"
        );
    }
    let data = &bodies[0]["data"];
    assert_eq!(data["positions"]["nodes"].as_array().unwrap().len(), 5);
    let symbols: HashSet<&str> = ["positions", "orders"]
        .iter()
        .flat_map(|list| data[list]["nodes"].as_array().unwrap())
        .map(|node| node["instrument"]["symbol"].as_str().unwrap())
        .collect();

    let stats = app.stats().await;
    assert_eq!(stats.count(&app.route("GET /v1/account")), 1);
    assert_eq!(stats.count(&app.route("GET /v1/positions")), 1);
    assert_eq!(stats.count(&app.route("GET /v1/orders")), 1);
    let lookups = stats.count(&app.route("GET /v1/instruments/{symbol}"));
    assert_eq!(lookups, symbols.len() as u64, "one per distinct symbol");

    let cache = app.cache.snapshot();
    assert_eq!(cache.broker_calls["account"], 1);
    assert_eq!(cache.total_broker_calls(), 3 + lookups);
    assert_eq!(cache.misses, 3 + lookups);
    assert!(cache.coalesced > 0, "{cache:?}");
    assert_eq!(cache.stale_served, 0);
}

#[tokio::test]
async fn two_accounts_sharing_one_store_never_see_each_other() {
    let sim = broker_sim::spawn(broker_sim::SimConfig {
        api_keys: vec!["key-a".into(), "key-b".into()],
        admin_token: Some(ADMIN.into()),
        ..broker_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let store = CacheStore::new(&CacheSettings::default());
    let cached = |key: &str, account: &str| {
        let inner = GenericBroker::new(GenericBrokerConfig {
            base_url: sim.base_url(),
            api_key: Secret::new(key),
            transport: Transport {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                extra_roots: Vec::new(),
            },
        })
        .unwrap();
        CachedBroker::new(
            Arc::new(inner),
            account,
            store.clone(),
            &ThrottleSettings::default(),
        )
    };
    let (a, b) = (cached("key-a", "account-a"), cached("key-b", "account-b"));
    let first_a = a.account().await.unwrap();
    let first_b = b.account().await.unwrap();
    assert_ne!(first_a.id, first_b.id);
    // Cached now: each still gets its own.
    assert_eq!(a.account().await.unwrap(), first_a);
    assert_eq!(b.account().await.unwrap(), first_b);
    assert_eq!(sim.stats().await.count("GET /v1/account"), 2);
    assert_eq!(store.stats().snapshot().hits, 2);
}

#[tokio::test]
async fn after_a_submit_the_next_query_shows_order_position_and_cash_despite_long_ttls() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| ttls(c, 60_000),
        ..AppOptions::default()
    })
    .await;
    let symbol = cheap_symbol(&app).await;
    let before = app.data(DASHBOARD, json!({})).await;
    let placed = app.data(SUBMIT, market_buy(&symbol, "3")).await["submitOrder"].clone();
    assert_eq!(placed["userErrors"], json!([]), "{placed}");
    let after = app.data(DASHBOARD, json!({})).await;
    assert_eq!(
        after["orders"]["nodes"][0]["brokerOrderId"],
        placed["order"]["brokerOrderId"]
    );
    assert_ne!(after["account"]["cash"], before["account"]["cash"]);
    let held = after["positions"]["nodes"].as_array().unwrap();
    assert!(held.iter().any(|p| p["symbol"] == json!(symbol)), "{after}");
    assert_eq!(app.cache.snapshot().invalidations, 1);
    // And the order by id was cached from the submit and the list: no broker call.
    let id = after["orders"]["nodes"][0]["brokerOrderId"]
        .as_str()
        .unwrap();
    let gid = base64_url(&format!("Order:{id}"));
    let data = app
        .data(
            "query($id: ID!) { order(id: $id) { brokerOrderId status } }",
            json!({ "id": gid }),
        )
        .await;
    assert_eq!(data["order"]["brokerOrderId"], json!(id));
    assert_eq!(app.stats().await.count("GET /v1/orders/{id}"), 0);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn a_list_page_fills_the_by_symbol_cache() {
    let app = spawn_app_with(AppOptions::default()).await;
    let data = app
        .data(
            "{ instruments(first: 100) { nodes { symbol } } }",
            json!({}),
        )
        .await;
    let symbols: Vec<&str> = data["instruments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols.len(), 100);
    for symbol in [symbols[0], symbols[57], symbols[99]] {
        let found = app
            .data(
                "query($s: String!) { instrument(symbol: $s) { symbol } }",
                json!({ "s": symbol }),
            )
            .await;
        assert_eq!(found["instrument"]["symbol"], json!(symbol));
    }
    assert_eq!(app.stats().await.count("GET /v1/instruments/{symbol}"), 0);
}
