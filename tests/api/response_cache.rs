//! The whole-response cache (`graphql::responses`) never answers with a
//! value its resource cache would no longer serve: not after a mutation
//! invalidated it, not after its TTL, not when part of it was stale or uncached.

use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{sim_config, spawn_app, spawn_app_with, AppOptions, TestApp};

const DASHBOARD: &str = "query Dashboard { account { cash buyingPower asOf } \
  orders(first: 5) { nodes { brokerOrderId status } } }";

const SUBMIT: &str = "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) \
  { order { brokerOrderId } userErrors { code message } } }";

async fn buy_through_gateway(app: &TestApp) -> String {
    let (symbol, lot) = app.tradable_instruments().await.remove(0);
    let input = json!({ "input": { "idempotencyKey": Uuid::new_v4(), "symbol": symbol,
        "side": "BUY", "type": "MARKET", "quantity": lot, "timeInForce": "DAY" } });
    let payload = app.data(SUBMIT, input).await["submitOrder"].clone();
    assert_eq!(payload["userErrors"], json!([]), "{payload:#}");
    payload["order"]["brokerOrderId"]
        .as_str()
        .expect("an order id")
        .to_string()
}

fn order_ids(data: &Value) -> Vec<&str> {
    data["orders"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["brokerOrderId"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn a_mutation_invalidates_reused_answers_before_it_returns() {
    let app = spawn_app().await;
    let first = app.data(DASHBOARD, json!({})).await;
    // Answered again while fresh: the same bytes, from the response cache.
    assert_eq!(app.data(DASHBOARD, json!({})).await, first);
    let id = buy_through_gateway(&app).await;
    let after = app.data(DASHBOARD, json!({})).await;
    assert_eq!(order_ids(&after).first().copied(), Some(id.as_str()));
    assert_ne!(after["account"]["cash"], first["account"]["cash"]);
    assert_ne!(after["account"]["asOf"], first["account"]["asOf"]);
}

#[tokio::test]
async fn a_reused_answer_ends_with_the_ttl_of_what_it_read() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| {
            c.cache.account_ttl = Duration::from_millis(150);
            c.cache.orders_ttl = Duration::from_millis(150);
        },
        ..AppOptions::default()
    })
    .await;
    let first = app.data(DASHBOARD, json!({})).await;
    assert_eq!(app.data(DASHBOARD, json!({})).await, first);
    // A change the gateway does not see: only the TTL can let it through.
    let (symbol, lot) = app.tradable_instruments().await.remove(0);
    let placed = app.broker_buy(&symbol, &lot).await;
    let id = placed["id"].as_str().expect("order id");
    // Within the TTL the resource caches still answer the old values, and so may we.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = app.data(DASHBOARD, json!({})).await;
    assert_eq!(order_ids(&after).first().copied(), Some(id));
    let broker = app.broker_get("/v1/account").await;
    assert_eq!(after["account"]["cash"], broker["cash"]);
}

#[tokio::test]
async fn stale_answers_are_recomputed_and_keep_saying_so() {
    let app = spawn_app_with(AppOptions {
        sim: sim_config(),
        tweak: |c| c.cache.account_ttl = Duration::from_millis(100),
        ..AppOptions::default()
    })
    .await;
    let query = "{ account { cash asOf } }";
    let fresh = app.graphql(query, json!({})).await;
    assert!(fresh.get("extensions").is_none(), "{fresh:#}");
    app.sim
        .set_faults(json!({ "rules": [{ "route": "*", "kind": "status", "status": 503 }] }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let stale = app.graphql(query, json!({})).await;
        assert_eq!(stale["data"], fresh["data"]);
        assert_eq!(
            stale["extensions"]["stale"][0]["resource"], "account",
            "{stale:#}"
        );
    }
}

#[tokio::test]
async fn an_answer_the_cache_did_not_hold_is_asked_again() {
    let app = spawn_app().await;
    let missing = common_order_id("00000000-0000-4000-8000-000000000000");
    let query = "query($id: ID!) { order(id: $id) { brokerOrderId } }";
    let before = app.stats().await;
    for _ in 0..2 {
        let data = app.data(query, json!({ "id": missing })).await;
        assert_eq!(data["order"], Value::Null);
    }
    let after = app.stats().await;
    let route = "GET /v1/orders/{id}";
    let count =
        |s: &broker_sim::Stats| s.requests.get(route).map_or(0, |m| m.values().sum::<u64>());
    assert_eq!(count(&after) - count(&before), 2, "a 404 is never reused");
}

fn common_order_id(local: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(format!("Order:{local}"))
}
