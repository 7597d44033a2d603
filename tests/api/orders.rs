//! submitOrder and cancelOrder over real HTTP: safe to retry, validated before
//! anything is sent, never a second order.

use broker_sim::Dialect;
use brokergraph::config::Scope;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{spawn_app, spawn_app_in, spawn_app_with, AppOptions, TestApp};

const SUBMIT: &str = r#"
mutation($input: SubmitOrderInput!) {
  submitOrder(input: $input) {
    replayed
    order { id brokerOrderId idempotencyKey symbol side type quantity status limitPrice }
    userErrors { field code message }
  }
}"#;

const CANCEL: &str = r#"
mutation($id: ID!) {
  cancelOrder(input: { orderId: $id }) {
    order { id status }
    userErrors { field code message }
  }
}"#;

/// A tradable instrument whose price the test pins to 10.00, and its lot size.
async fn instrument(app: &TestApp) -> (String, String) {
    let (symbol, lot) = app
        .tradable_instruments()
        .await
        .into_iter()
        .find(|(_, lot)| lot == "1")
        .expect("a tradable instrument with lot size 1");
    app.sim.set_price(&symbol, "10.00").await;
    (symbol, lot)
}

fn market(key: Uuid, symbol: &str, qty: &str) -> Value {
    json!({ "input": { "idempotencyKey": key, "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": qty } })
}

async fn submit(app: &TestApp, vars: Value) -> Value {
    app.data(SUBMIT, vars).await["submitOrder"].clone()
}

/// One deadline bounds a submit, the resilience layer's retries included: a broker
/// that never answers gets one send, then the client is told OUTCOME_UNKNOWN (its
/// retry with the key settles it), instead of one send per inner retry while the
/// deadline has long passed.
#[tokio::test]
async fn a_submit_to_a_hung_broker_sends_once_within_the_resend_deadline() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| {
            c.idempotency.resend_deadline = std::time::Duration::from_millis(300);
            c.broker.request_timeout = std::time::Duration::from_secs(2);
        },
        ..AppOptions::default()
    })
    .await;
    let (symbol, _) = instrument(&app).await;
    let orders = app.route("POST /v1/orders");
    app.sim
        .set_faults(json!({ "rules": [{ "route": orders, "kind": "hang" }] }))
        .await;
    let body = app
        .graphql(SUBMIT, market(Uuid::new_v4(), &symbol, "1"))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "OUTCOME_UNKNOWN",
        "{body:#}"
    );
    assert_eq!(app.stats().await.count(&orders), 1);
}

async fn the_same_key_twice_places_one_order_and_replays_it(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = instrument(&app).await;
    let key = Uuid::new_v4();
    let first = submit(&app, market(key, &symbol, "3")).await;
    assert_eq!(first["replayed"], false);
    assert_eq!(first["userErrors"], json!([]));
    assert_eq!(first["order"]["idempotencyKey"], json!(key.to_string()));
    let second = submit(&app, market(key, &symbol, "3")).await;
    assert_eq!(second["replayed"], true);
    assert_eq!(second["order"]["id"], first["order"]["id"]);
    let stats = app.stats().await;
    assert_eq!(stats.orders_created, 1);
}

async fn fifty_concurrent_submits_with_one_key_place_one_order(dialect: Dialect) {
    let app = std::sync::Arc::new(spawn_app_in(dialect).await);
    let (symbol, _) = instrument(&app).await;
    let key = Uuid::new_v4();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            let vars = market(key, &symbol, "1");
            tokio::spawn(async move { app.graphql(SUBMIT, vars).await })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let body = t.await.unwrap();
        if let Some(id) = body["data"]["submitOrder"]["order"]["id"].as_str() {
            ids.insert(id.to_string());
        } else {
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "IDEMPOTENCY_KEY_IN_USE",
                "{body}"
            );
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.stats().await.orders_created, 1);
}

async fn the_same_key_with_another_quantity_is_refused_and_places_nothing(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = instrument(&app).await;
    let key = Uuid::new_v4();
    submit(&app, market(key, &symbol, "2")).await;
    let reused = submit(&app, market(key, &symbol, "5")).await;
    assert_eq!(reused["order"], Value::Null);
    assert_eq!(reused["userErrors"][0]["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        reused["userErrors"][0]["field"],
        json!(["input", "idempotencyKey"])
    );
    // The same quantity written differently is the same order, not a reuse.
    let same = submit(&app, market(key, &symbol, "2.00")).await;
    assert_eq!(same["replayed"], true);
    assert_eq!(app.stats().await.orders_created, 1);
}

async fn commit_then_fail_never_duplicates_over_200_retried_submits(dialect: Dialect) {
    let app = std::sync::Arc::new(spawn_app_in(dialect).await);
    let (symbol, _) = instrument(&app).await;
    app.sim
        .set_faults(json!({ "seed": 11, "rules": [
            { "route": app.route("POST /v1/orders"), "kind": "commit_then_fail", "rate": 0.3, "as": "503" },
            { "route": app.route("POST /v1/orders"), "kind": "commit_then_fail", "rate": 0.2, "as": "reset" },
            { "route": app.route("POST /v1/orders"), "kind": "status", "status": 503, "rate": 0.1 }
        ]}))
        .await;
    let mut keys = Vec::new();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let key = Uuid::new_v4();
            keys.push(key);
            let app = app.clone();
            let vars = market(key, &symbol, "1");
            tokio::spawn(async move {
                // A client that retries with the same key until it gets an order,
                // pausing as a real client would (an open circuit answers at once).
                for _ in 0..400 {
                    let body = app.graphql(SUBMIT, vars.clone()).await;
                    if let Some(id) = body["data"]["submitOrder"]["order"]["brokerOrderId"].as_str()
                    {
                        return id.to_string();
                    }
                    let code = body["errors"][0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    assert!(
                        [
                            "OUTCOME_UNKNOWN",
                            "IDEMPOTENCY_KEY_IN_USE",
                            "BROKER_UNAVAILABLE"
                        ]
                        .contains(&code.as_str()),
                        "unexpected answer: {body}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                panic!("no order after 400 tries");
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.unwrap()), "two keys got the same order");
    }
    app.sim.clear_faults().await;
    assert_eq!(ids.len(), 200);
    assert_eq!(
        app.stats().await.orders_created,
        200,
        "one broker order per key"
    );
}

async fn validation_errors_name_the_field_and_send_nothing(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = instrument(&app).await;
    let cases = [
        (
            json!({ "symbol": "NOT-A-SYMBOL", "type": "MARKET", "quantity": "1" }),
            "UNKNOWN_SYMBOL",
            "symbol",
        ),
        (
            json!({ "symbol": symbol, "type": "MARKET", "quantity": "0" }),
            "INVALID_QUANTITY",
            "quantity",
        ),
        (
            json!({ "symbol": symbol, "type": "MARKET", "quantity": "1.5" }),
            "LOT_SIZE",
            "quantity",
        ),
        (
            json!({ "symbol": symbol, "type": "LIMIT", "quantity": "1" }),
            "MISSING_LIMIT_PRICE",
            "limitPrice",
        ),
        (
            json!({ "symbol": symbol, "type": "MARKET", "quantity": "1", "limitPrice": "10" }),
            "UNEXPECTED_LIMIT_PRICE",
            "limitPrice",
        ),
        (
            json!({ "symbol": symbol, "type": "LIMIT", "quantity": "1", "limitPrice": "10.00001" }),
            "TICK_SIZE",
            "limitPrice",
        ),
        (
            json!({ "symbol": symbol, "type": "STOP", "quantity": "1" }),
            "MISSING_STOP_PRICE",
            "stopPrice",
        ),
    ];
    for (mut input, code, field) in cases {
        input["idempotencyKey"] = json!(Uuid::new_v4());
        input["side"] = json!("BUY");
        let payload = submit(&app, json!({ "input": input })).await;
        assert_eq!(payload["order"], Value::Null);
        assert_eq!(payload["userErrors"][0]["code"], code, "{payload}");
        assert_eq!(payload["userErrors"][0]["field"], json!(["input", field]));
    }
    let stats = app.stats().await;
    assert_eq!(stats.count(&app.route("POST /v1/orders")), 0);
}

#[tokio::test]
async fn a_float_quantity_is_refused_with_advice() {
    let app = spawn_app().await;
    let (symbol, _) = instrument(&app).await;
    let body = app
        .graphql(
            &format!("mutation {{ submitOrder(input: {{ idempotencyKey: \"{}\", symbol: \"{symbol}\", side: BUY, type: MARKET, quantity: 1.5 }}) {{ replayed }} }}", Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("string"));
    assert_eq!(app.stats().await.count("POST /v1/orders"), 0);
}

async fn a_market_order_shows_in_the_very_next_query(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = instrument(&app).await;
    let q =
        "query($s: String) { account { cash } positions(first: 100) { nodes { symbol quantity } }
             orders(first: 5, filter: { symbol: $s }) { nodes { brokerOrderId status } } }";
    let before = app.data(q, json!({ "s": symbol })).await;
    let placed = submit(&app, market(Uuid::new_v4(), &symbol, "4")).await;
    let after = app.data(q, json!({ "s": symbol })).await;
    assert_eq!(
        after["orders"]["nodes"][0]["brokerOrderId"],
        placed["order"]["brokerOrderId"]
    );
    let settled = |seen: &Value| {
        let held = seen["positions"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["symbol"] == json!(symbol));
        seen["orders"]["nodes"][0]["status"] == "FILLED"
            && held
            && seen["account"]["cash"] != before["account"]["cash"]
    };
    // The generic broker fills a market order before it answers, so the very next
    // query shows the fill too. Alpaca accepts orders and routes them after its
    // answer: once the fill has happened, cash and positions show it.
    assert!(
        dialect == Dialect::Alpaca || settled(&after),
        "the fill in the next query: {after}"
    );
    let mut seen = after;
    for _ in 0..100 {
        if settled(&seen) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = app.data(q, json!({ "s": symbol })).await;
    }
    panic!("the fill never showed in cash, positions and the order: {seen}");
}

async fn resting_limit(app: &TestApp, symbol: &str) -> Value {
    let vars = json!({ "input": { "idempotencyKey": Uuid::new_v4(), "symbol": symbol, "side": "BUY", "type": "LIMIT",
        "quantity": "1", "limitPrice": "5.00", "timeInForce": "GTC" } });
    let payload = submit(app, vars).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    payload["order"].clone()
}

async fn cancel_a_resting_order_twice_then_unknown(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = instrument(&app).await;
    let order = resting_limit(&app, &symbol).await;
    let first = app.data(CANCEL, json!({ "id": order["id"] })).await["cancelOrder"].clone();
    assert_eq!(first["userErrors"], json!([]));
    assert!(["CANCELED", "PENDING_CANCEL"].contains(&first["order"]["status"].as_str().unwrap()));
    let again = app.data(CANCEL, json!({ "id": order["id"] })).await["cancelOrder"].clone();
    assert_eq!(
        again["userErrors"],
        json!([]),
        "already cancelled is not an error"
    );
    let unknown = base64_url("Order:no-such-order");
    let missing = app.data(CANCEL, json!({ "id": unknown })).await["cancelOrder"].clone();
    assert_eq!(missing["userErrors"][0]["code"], "ORDER_NOT_FOUND");
}

async fn cancel_of_an_order_that_filled_meanwhile_is_not_cancelable(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = instrument(&app).await;
    let order = resting_limit(&app, &symbol).await;
    app.sim.set_price(&symbol, "4.00").await;
    // The fill happens on the sim's next market tick.
    let mut status = String::new();
    for _ in 0..100 {
        let data = app
            .data(
                "query($id: ID!) { order(id: $id) { status } }",
                json!({ "id": order["id"] }),
            )
            .await;
        status = data["order"]["status"].as_str().unwrap().to_string();
        if status == "FILLED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "FILLED");
    let payload = app.data(CANCEL, json!({ "id": order["id"] })).await["cancelOrder"].clone();
    assert_eq!(payload["userErrors"][0]["code"], "ORDER_NOT_CANCELABLE");
    assert_eq!(payload["order"]["status"], "FILLED");
}

#[tokio::test]
async fn a_read_key_cannot_trade() {
    let app = spawn_app_with(AppOptions {
        keys: vec![("reader", "read-key-123", vec![Scope::Read])],
        use_key: Some("read-key-123"),
        ..AppOptions::default()
    })
    .await;
    let (symbol, _) = instrument(&app).await;
    let code = app
        .error_code(SUBMIT, market(Uuid::new_v4(), &symbol, "1"))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let code = app
        .error_code(CANCEL, json!({ "id": base64_url("Order:x") }))
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(app.stats().await.count("POST /v1/orders"), 0);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

// The same tests against broker-sim's generic (v1) and Alpaca (v2) dialects.
crate::in_both_dialects!(
    the_same_key_twice_places_one_order_and_replays_it,
    fifty_concurrent_submits_with_one_key_place_one_order,
    the_same_key_with_another_quantity_is_refused_and_places_nothing,
    commit_then_fail_never_duplicates_over_200_retried_submits,
    validation_errors_name_the_field_and_send_nothing,
    a_market_order_shows_in_the_very_next_query,
    cancel_a_resting_order_twice_then_unknown,
    cancel_of_an_order_that_filled_meanwhile_is_not_cancelable,
);
