//! Partial results (`graphql::partial`): a request the response cache cannot answer
//! (here: a distinct variable each time) takes the root fields kept from earlier
//! requests, under the response cache's rules: never after a mutation, never past
//! the TTL of what was read, never for other arguments, never another account's.

use std::time::Duration;

use brokergraph::config::Scope;
use serde_json::{json, Value};
use uuid::Uuid;

use super::accounts::{add_desk_b, two_account_options};
use crate::common::{spawn_app, spawn_app_with, AppOptions, TestApp};

const DASHBOARD: &str = "query Dashboard { account { cash buyingPower asOf } \
  orders(first: 5) { nodes { brokerOrderId status } } }";

const SUBMIT: &str = "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) \
  { order { brokerOrderId } userErrors { code message } } }";

/// Variables the document does not use: the response cache keys on them, so
/// every request executes; the root fields do not depend on them.
fn distinct() -> Value {
    json!({ "nonce": Uuid::new_v4() })
}

fn order_ids(data: &Value) -> Vec<&str> {
    data["orders"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["brokerOrderId"].as_str().expect("id"))
        .collect()
}

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

#[tokio::test]
async fn a_mutation_retires_kept_root_fields_before_it_returns() {
    let app = spawn_app().await;
    let first = app.data(DASHBOARD, distinct()).await;
    assert_eq!(app.data(DASHBOARD, distinct()).await, first);
    let id = buy_through_gateway(&app).await;
    let after = app.data(DASHBOARD, distinct()).await;
    assert_eq!(order_ids(&after).first().copied(), Some(id.as_str()));
    assert_ne!(after["account"]["cash"], first["account"]["cash"]);
    assert_ne!(after["account"]["asOf"], first["account"]["asOf"]);
}

#[tokio::test]
async fn a_kept_root_field_ends_with_the_ttl_of_what_its_request_read() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| {
            c.cache.account_ttl = Duration::from_millis(150);
            c.cache.orders_ttl = Duration::from_millis(150);
        },
        ..AppOptions::default()
    })
    .await;
    let first = app.data(DASHBOARD, distinct()).await;
    assert_eq!(app.data(DASHBOARD, distinct()).await, first);
    // A change the gateway does not see: only the TTL can let it through.
    let (symbol, lot) = app.tradable_instruments().await.remove(0);
    let placed = app.broker_buy(&symbol, &lot).await;
    let id = placed["id"].as_str().expect("order id");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = app.data(DASHBOARD, distinct()).await;
    assert_eq!(order_ids(&after).first().copied(), Some(id));
    let broker = app.broker_get("/v1/account").await;
    assert_eq!(after["account"]["cash"], broker["cash"]);
}

#[tokio::test]
async fn a_root_field_asked_with_other_arguments_is_executed_for_them() {
    let app = spawn_app().await;
    let (symbol, lot) = app.tradable_instruments().await.remove(0);
    for _ in 0..3 {
        app.broker_buy(&symbol, &lot).await;
    }
    let query = "query($first: Int, $status: OrderStatusFilter) { account { cash } \
        orders(first: $first, filter: { status: $status }) { nodes { brokerOrderId } } }";
    let one = app.data(query, json!({ "first": 1 })).await;
    let three = app.data(query, json!({ "first": 3 })).await;
    assert_eq!(order_ids(&one).len(), 1);
    assert_eq!(order_ids(&three).len(), 3);
    assert_eq!(one["account"], three["account"]);
    let open = app
        .data(query, json!({ "first": 3, "status": "OPEN" }))
        .await;
    assert!(
        order_ids(&open).len() < 3,
        "market buys are filled, not open: {open:#}"
    );
    // Absent is not null: `first` absent takes the connection's default page size.
    let absent = app.data(query, json!({})).await;
    let null = app.data(query, json!({ "first": null })).await;
    assert_eq!(order_ids(&absent).len(), order_ids(&null).len());
    assert!(order_ids(&absent).len() >= 3, "{absent:#}");
}

#[tokio::test]
async fn callers_of_one_account_never_get_another_accounts_kept_fields() {
    const KEY_A: &str = "gateway-key-a";
    const KEY_B: &str = "gateway-key-b";
    let app = spawn_app_with(AppOptions {
        keys: vec![
            ("a", KEY_A, vec![Scope::Read]),
            ("b", KEY_B, vec![Scope::Read]),
        ],
        use_key: Some(KEY_A),
        tweak: |c| {
            add_desk_b(c);
            c.keys[1].account = "desk-b".into();
        },
        ..two_account_options()
    })
    .await;
    let query = "{ account { id accountNumber } }";
    let mut seen = Vec::new();
    for key in [KEY_A, KEY_B, KEY_A, KEY_B] {
        let (status, body) = app.as_bearer(key, query).await;
        assert_eq!(status, 200, "{body:#}");
        seen.push(body["data"]["account"]["accountNumber"].clone());
    }
    assert_ne!(seen[0], seen[1]);
    assert_eq!((&seen[0], &seen[1]), (&seen[2], &seen[3]));
}
