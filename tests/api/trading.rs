//! Trading beyond submit and cancel, over real HTTP in both of broker-sim's dialects:
//! replaceOrder (safe to retry: one replacement per key), closePosition (long and
//! short), cancelAllOrders, and auction time in force (OPG, CLS).

use std::sync::Arc;

use broker_sim::{Dialect, SimConfig};
use brokergraph::config::Scope;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{sim_config, spawn_app_in, spawn_app_with, AppOptions, TestApp};

const REPLACE: &str = r#"
mutation($input: ReplaceOrderInput!) {
  replaceOrder(input: $input) {
    replayed
    order { id brokerOrderId idempotencyKey quantity limitPrice status timeInForce }
    replacedOrder { id brokerOrderId status }
    userErrors { field code message }
  }
}"#;

const CLOSE: &str = r#"
mutation($input: ClosePositionInput!) {
  closePosition(input: $input) {
    replayed
    order { id brokerOrderId idempotencyKey symbol side type quantity status }
    userErrors { field code message }
  }
}"#;

const CANCEL_ALL: &str = r#"
mutation($input: CancelAllOrdersInput!) {
  cancelAllOrders(input: $input) {
    canceled { brokerOrderId status }
    notCanceled { brokerOrderId status }
    userErrors { field code message }
  }
}"#;

const POSITIONS: &str = "{ positions(first: 100) { nodes { symbol quantity } } }";

const SUBMIT: &str = r#"
mutation($input: SubmitOrderInput!) {
  submitOrder(input: $input) {
    order { id brokerOrderId symbol side type quantity status timeInForce }
    userErrors { field code message }
  }
}"#;

const ORDER: &str = "query($id: ID!) { order(id: $id) { status filledQuantity timeInForce } }";

/// A tradable lot-1 instrument, its price pinned to 10.00.
async fn instrument(app: &TestApp) -> String {
    let (symbol, _) = app
        .tradable_instruments()
        .await
        .into_iter()
        .find(|(_, lot)| lot == "1")
        .expect("a tradable instrument with lot size 1");
    app.sim.set_price(&symbol, "10.00").await;
    symbol
}

async fn submit(app: &TestApp, input: Value) -> Value {
    app.data(SUBMIT, json!({ "input": input })).await["submitOrder"].clone()
}

/// Polls the order until `done` holds for it (the broker changes orders after its
/// answers: fills on its ticks, auctions at its close).
async fn order_until(app: &TestApp, id: &Value, done: impl Fn(&Value) -> bool) -> Value {
    let mut order = Value::Null;
    for _ in 0..100 {
        order = app.data(ORDER, json!({ "id": id })).await["order"].clone();
        if done(&order) {
            return order;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the order never got there: {order}");
}

async fn an_opg_order_waits_for_the_opening_auction(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbol = instrument(&app).await;
    let placed = submit(
        &app,
        json!({ "idempotencyKey": Uuid::new_v4(), "symbol": symbol, "side": "BUY",
            "type": "MARKET", "quantity": "3", "timeInForce": "OPG" }),
    )
    .await;
    assert_eq!(placed["userErrors"], json!([]), "{placed}");
    let order = &placed["order"];
    assert_eq!(order["timeInForce"], "OPG");
    assert!(
        ["PENDING", "ACCEPTED"].contains(&order["status"].as_str().unwrap()),
        "a market order on the open rests until the auction: {order}"
    );
    // Where the broker routes after its answer, the order is accepted but still waits.
    let waiting = order_until(&app, &order["id"], |o| o["status"] == "ACCEPTED").await;
    assert_eq!(waiting["filledQuantity"], "0");
    app.sim.close_session().await;
    let filled = order_until(&app, &order["id"], |o| o["status"] == "FILLED").await;
    assert_eq!(filled["filledQuantity"], "3");

    // The auctions take market and limit orders only: refused before anything is sent.
    let stop = submit(
        &app,
        json!({ "idempotencyKey": Uuid::new_v4(), "symbol": symbol, "side": "BUY",
            "type": "STOP", "stopPrice": "11.00", "quantity": "1", "timeInForce": "CLS" }),
    )
    .await;
    assert_eq!(stop["order"], Value::Null);
    assert_eq!(stop["userErrors"][0]["code"], "INVALID_TIME_IN_FORCE");
    assert_eq!(
        stop["userErrors"][0]["field"],
        json!(["input", "timeInForce"])
    );
    assert_eq!(app.stats().await.count(&app.route("POST /v1/orders")), 1);
}

/// Two tradable lot-1 instruments, priced at 10.00.
async fn two_instruments(app: &TestApp) -> (String, String) {
    let mut lot_one = app
        .tradable_instruments()
        .await
        .into_iter()
        .filter(|(_, lot)| lot == "1")
        .map(|(symbol, _)| symbol);
    let (a, b) = (lot_one.next().unwrap(), lot_one.next().unwrap());
    app.sim.set_price(&a, "10.00").await;
    app.sim.set_price(&b, "10.00").await;
    (a, b)
}

async fn resting_buy(app: &TestApp, symbol: &str, qty: &str, price: &str) -> Value {
    let placed = submit(
        app,
        json!({ "idempotencyKey": Uuid::new_v4(), "symbol": symbol, "side": "BUY",
            "type": "LIMIT", "quantity": qty, "limitPrice": price, "timeInForce": "GTC" }),
    )
    .await;
    assert_eq!(placed["userErrors"], json!([]), "{placed}");
    placed["order"].clone()
}

/// A market order, waited for until it filled.
async fn filled(app: &TestApp, symbol: &str, side: &str, qty: &str) -> Value {
    let placed = submit(
        app,
        json!({ "idempotencyKey": Uuid::new_v4(), "symbol": symbol, "side": side,
            "type": "MARKET", "quantity": qty }),
    )
    .await;
    assert_eq!(placed["userErrors"], json!([]), "{placed}");
    order_until(app, &placed["order"]["id"], |o| o["status"] == "FILLED").await;
    placed["order"].clone()
}

async fn replace(app: &TestApp, input: Value) -> Value {
    app.data(REPLACE, json!({ "input": input })).await["replaceOrder"].clone()
}

/// The position in `symbol` as the gateway shows it, once `done` holds for it (the
/// positions cache lives 2 s, and fills may follow the answers).
async fn position_until(app: &TestApp, symbol: &str, done: impl Fn(Option<&str>) -> bool) {
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = app.data(POSITIONS, json!({})).await;
        let held = seen["positions"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["symbol"] == json!(symbol))
            .and_then(|p| p["quantity"].as_str());
        if done(held) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the position in {symbol} never got there: {seen}");
}

async fn replace_a_resting_limit_order_once_per_key(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbol = instrument(&app).await;
    let old = resting_buy(&app, &symbol, "1", "5.00").await;
    let key = Uuid::new_v4();
    let input = json!({ "orderId": old["id"], "idempotencyKey": key,
        "quantity": "2", "limitPrice": "5.50" });
    let first = replace(&app, input.clone()).await;
    assert_eq!(first["userErrors"], json!([]), "{first}");
    assert_eq!(first["replayed"], false);
    let new = &first["order"];
    assert_ne!(new["brokerOrderId"], old["brokerOrderId"]);
    assert_eq!(
        (&new["quantity"], &new["limitPrice"], &new["idempotencyKey"]),
        (&json!("2"), &json!("5.50"), &json!(key.to_string()))
    );
    assert!(["PENDING", "ACCEPTED"].contains(&new["status"].as_str().unwrap()));
    assert_eq!(
        first["replacedOrder"]["brokerOrderId"],
        old["brokerOrderId"]
    );
    assert_eq!(first["replacedOrder"]["status"], "CANCELED");

    // The same key again: the same replacement, and still one at the broker.
    let again = replace(&app, input).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["order"]["brokerOrderId"], new["brokerOrderId"]);
    let reused = replace(
        &app,
        json!({ "orderId": old["id"], "idempotencyKey": key, "quantity": "3" }),
    )
    .await;
    assert_eq!(reused["userErrors"][0]["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        app.stats().await.orders_created,
        2,
        "the order and one replacement"
    );
    assert_eq!(
        app.stats().await.count(&app.route("PATCH /v1/orders/{id}")),
        1
    );

    // What is checked before anything is sent.
    for (change, code, field) in [
        (json!({}), "NOTHING_TO_REPLACE", Value::Null),
        (
            json!({ "quantity": "0" }),
            "INVALID_QUANTITY",
            json!(["input", "quantity"]),
        ),
        (
            json!({ "limitPrice": "5.001" }),
            "TICK_SIZE",
            json!(["input", "limitPrice"]),
        ),
        (
            json!({ "stopPrice": "4.00" }),
            "UNEXPECTED_STOP_PRICE",
            json!(["input", "stopPrice"]),
        ),
    ] {
        let mut input = change;
        input["orderId"] = new["id"].clone();
        input["idempotencyKey"] = json!(Uuid::new_v4());
        let refused = replace(&app, input).await;
        assert_eq!(refused["order"], Value::Null);
        assert_eq!(refused["userErrors"][0]["code"], code, "{refused}");
        assert_eq!(refused["userErrors"][0]["field"], field);
    }
    let missing = replace(
        &app,
        json!({ "orderId": base64_url("Order:no-such-order"), "idempotencyKey": Uuid::new_v4(), "quantity": "1" }),
    )
    .await;
    assert_eq!(missing["userErrors"][0]["code"], "ORDER_NOT_FOUND");
    assert_eq!(
        app.stats().await.count(&app.route("PATCH /v1/orders/{id}")),
        1
    );
}

async fn a_filled_order_is_not_replaceable(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbol = instrument(&app).await;
    let order = filled(&app, &symbol, "BUY", "2").await;
    let refused = replace(
        &app,
        json!({ "orderId": order["id"], "idempotencyKey": Uuid::new_v4(), "quantity": "3" }),
    )
    .await;
    assert_eq!(refused["order"], Value::Null);
    let error = &refused["userErrors"][0];
    assert_eq!(error["code"], "ORDER_NOT_REPLACEABLE", "{refused}");
    assert_eq!(error["field"], json!(["input", "orderId"]));
    assert_eq!(refused["replacedOrder"]["status"], "FILLED");
}

async fn close_a_long_position(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbol = instrument(&app).await;
    filled(&app, &symbol, "BUY", "5").await;
    position_until(&app, &symbol, |q| q == Some("5")).await;
    // Part of it first, then the rest.
    let key = Uuid::new_v4();
    let input = json!({ "input": { "symbol": symbol, "quantity": "2", "idempotencyKey": key } });
    let part = app.data(CLOSE, input.clone()).await["closePosition"].clone();
    assert_eq!(part["userErrors"], json!([]), "{part}");
    let order = &part["order"];
    assert_eq!(
        (&order["side"], &order["type"], &order["quantity"]),
        (&json!("SELL"), &json!("MARKET"), &json!("2"))
    );
    assert_eq!(order["idempotencyKey"], json!(key.to_string()));
    order_until(&app, &order["id"], |o| o["status"] == "FILLED").await;
    // A retry after the position changed still answers the same order.
    let again = app.data(CLOSE, input).await["closePosition"].clone();
    assert_eq!(
        (&again["replayed"], &again["order"]["brokerOrderId"]),
        (&json!(true), &order["brokerOrderId"])
    );
    position_until(&app, &symbol, |q| q == Some("3")).await;
    let rest = app
        .data(
            CLOSE,
            json!({ "input": { "symbol": symbol, "idempotencyKey": Uuid::new_v4() } }),
        )
        .await["closePosition"]
        .clone();
    assert_eq!(rest["order"]["quantity"], "3", "{rest}");
    order_until(&app, &rest["order"]["id"], |o| o["status"] == "FILLED").await;
    position_until(&app, &symbol, |q| q.is_none()).await;
    let nothing = app
        .data(
            CLOSE,
            json!({ "input": { "symbol": symbol, "idempotencyKey": Uuid::new_v4() } }),
        )
        .await["closePosition"]
        .clone();
    assert_eq!(
        nothing["userErrors"][0]["code"], "POSITION_NOT_FOUND",
        "{nothing}"
    );
    assert_eq!(
        nothing["userErrors"][0]["field"],
        json!(["input", "symbol"])
    );
    let too_much = app
        .data(
            CLOSE,
            json!({ "input": { "symbol": symbol, "quantity": "0", "idempotencyKey": Uuid::new_v4() } }),
        )
        .await["closePosition"]
        .clone();
    assert_eq!(too_much["userErrors"][0]["code"], "INVALID_QUANTITY");
}

async fn close_a_short_position(dialect: Dialect) {
    let app = spawn_app_with(AppOptions {
        sim: SimConfig {
            dialect,
            shorting: true,
            ..sim_config()
        },
        ..AppOptions::default()
    })
    .await;
    let symbol = instrument(&app).await;
    filled(&app, &symbol, "SELL", "4").await;
    position_until(&app, &symbol, |q| q == Some("-4")).await;
    let closed = app
        .data(
            CLOSE,
            json!({ "input": { "symbol": symbol, "idempotencyKey": Uuid::new_v4() } }),
        )
        .await["closePosition"]
        .clone();
    assert_eq!(closed["userErrors"], json!([]), "{closed}");
    assert_eq!(
        (&closed["order"]["side"], &closed["order"]["quantity"]),
        (&json!("BUY"), &json!("4"))
    );
    order_until(&app, &closed["order"]["id"], |o| o["status"] == "FILLED").await;
    position_until(&app, &symbol, |q| q.is_none()).await;
}

async fn cancel_all_cancels_open_orders_and_leaves_filled_ones(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (a, b) = two_instruments(&app).await;
    let a1 = resting_buy(&app, &a, "1", "5.00").await;
    let a2 = resting_buy(&app, &a, "2", "5.00").await;
    let b1 = resting_buy(&app, &b, "1", "5.00").await;
    let done = filled(&app, &a, "BUY", "1").await;
    let ids = |list: &Value| -> Vec<String> {
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["brokerOrderId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let sorted = |orders: &[&Value]| -> Vec<String> {
        let mut ids: Vec<String> = orders
            .iter()
            .map(|o| o["brokerOrderId"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };

    // One symbol's: the other symbol's order and the filled one are untouched.
    let key = Uuid::new_v4();
    let input = json!({ "input": { "idempotencyKey": key, "symbol": a } });
    let of_a = app.data(CANCEL_ALL, input.clone()).await["cancelAllOrders"].clone();
    assert_eq!(of_a["userErrors"], json!([]), "{of_a}");
    assert_eq!(ids(&of_a["canceled"]), sorted(&[&a1, &a2]));
    assert_eq!(of_a["notCanceled"], json!([]));
    for order in of_a["canceled"].as_array().unwrap() {
        assert!(["CANCELED", "PENDING_CANCEL"].contains(&order["status"].as_str().unwrap()));
    }
    // A retry answers what the first attempt canceled.
    let again = app.data(CANCEL_ALL, input).await["cancelAllOrders"].clone();
    assert_eq!(ids(&again["canceled"]), sorted(&[&a1, &a2]));
    order_until(&app, &b1["id"], |o| o["status"] != "CANCELED").await;

    let everything = app
        .data(
            CANCEL_ALL,
            json!({ "input": { "idempotencyKey": Uuid::new_v4() } }),
        )
        .await["cancelAllOrders"]
        .clone();
    assert_eq!(ids(&everything["canceled"]), sorted(&[&b1]), "{everything}");
    order_until(&app, &done["id"], |o| o["status"] == "FILLED").await;
    let nothing_left = app
        .data(
            CANCEL_ALL,
            json!({ "input": { "idempotencyKey": Uuid::new_v4() } }),
        )
        .await["cancelAllOrders"]
        .clone();
    assert_eq!(nothing_left["canceled"], json!([]));
}

/// The promise of replaceOrder under the worst failures: the broker replaces, then the
/// answer is lost (a 503 or a dropped connection). 200 clients retry with their key
/// until they get an order; each key is one replacement at the broker.
async fn commit_then_fail_never_replaces_twice_over_200_retried_replaces(dialect: Dialect) {
    let app = Arc::new(spawn_app_in(dialect).await);
    let symbol = instrument(&app).await;
    let mut originals = Vec::new();
    for _ in 0..200 {
        originals.push(resting_buy(&app, &symbol, "1", "5.00").await);
    }
    let patch = app.route("PATCH /v1/orders/{id}");
    app.sim
        .set_faults(json!({ "seed": 12, "rules": [
            { "route": patch, "kind": "commit_then_fail", "rate": 0.3, "as": "503" },
            { "route": patch, "kind": "commit_then_fail", "rate": 0.2, "as": "reset" },
            { "route": patch, "kind": "status", "status": 503, "rate": 0.1 }
        ]}))
        .await;
    let tasks: Vec<_> = originals
        .iter()
        .map(|original| {
            let app = app.clone();
            let key = Uuid::new_v4();
            let input = json!({ "input": { "orderId": original["id"], "idempotencyKey": key,
                "limitPrice": "5.10" } });
            tokio::spawn(async move {
                for _ in 0..400 {
                    let body = app.graphql(REPLACE, input.clone()).await;
                    let payload = &body["data"]["replaceOrder"];
                    if let Some(id) = payload["order"]["brokerOrderId"].as_str() {
                        return (key, id.to_string());
                    }
                    assert!(body["data"].is_null(), "no order and no error: {body}");
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
                panic!("no replacement after 400 tries");
            })
        })
        .collect();
    let mut answered = std::collections::HashMap::new();
    for task in tasks {
        let (key, id) = task.await.unwrap();
        answered.insert(id, key);
    }
    app.sim.clear_faults().await;
    assert_eq!(answered.len(), 200, "200 keys, 200 different replacements");
    assert_eq!(
        app.stats().await.orders_created,
        400,
        "one replacement per key"
    );
    // At the broker: each original was replaced once, by the order its key answered.
    let listed = match dialect {
        Dialect::Generic => {
            let mut all = Vec::new();
            let mut path = "/v1/orders?status=all&limit=100".to_string();
            loop {
                let page = app.broker_get(&path).await;
                all.extend(page["data"].as_array().unwrap().iter().cloned());
                match page["next_cursor"].as_str() {
                    Some(c) => path = format!("/v1/orders?status=all&limit=100&cursor={c}"),
                    None => break all,
                }
            }
        }
        Dialect::Alpaca => app
            .broker_get("/v2/orders?status=all&limit=500")
            .await
            .as_array()
            .unwrap()
            .clone(),
    };
    let replacements: Vec<&Value> = listed
        .iter()
        .filter(|o| o["replaces"].is_string())
        .collect();
    assert_eq!(replacements.len(), 200);
    let replaced: std::collections::HashSet<&str> = replacements
        .iter()
        .map(|o| o["replaces"].as_str().unwrap())
        .collect();
    assert_eq!(replaced.len(), 200, "no original replaced twice");
    for order in replacements {
        assert!(
            answered.contains_key(order["id"].as_str().unwrap()),
            "a replacement no client was told of: {order}"
        );
    }
}

#[tokio::test]
async fn a_read_key_cannot_replace_close_or_cancel_all() {
    let app = spawn_app_with(AppOptions {
        keys: vec![("reader", "read-key-123", vec![Scope::Read])],
        use_key: Some("read-key-123"),
        ..AppOptions::default()
    })
    .await;
    let key = Uuid::new_v4();
    for (query, input) in [
        (
            REPLACE,
            json!({ "orderId": base64_url("Order:x"), "idempotencyKey": key, "quantity": "1" }),
        ),
        (CLOSE, json!({ "symbol": "ABC", "idempotencyKey": key })),
        (CANCEL_ALL, json!({ "idempotencyKey": key })),
    ] {
        let code = app.error_code(query, json!({ "input": input })).await;
        assert_eq!(code, "FORBIDDEN");
    }
    assert_eq!(app.broker_requests().await, 0);
}

/// Each new mutation is audited like submit and cancel: one line per attempt, with
/// its name, key, input and outcome, before the response.
#[tokio::test]
async fn the_trading_mutations_are_audited() {
    let path = std::env::temp_dir().join(format!(
        "brokergraph-audit-trading-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    fn set_path(c: &mut brokergraph::config::Config) {
        c.audit.file = Some(std::env::temp_dir().join(format!(
            "brokergraph-audit-trading-{}.jsonl",
            std::process::id()
        )));
    }
    let app = spawn_app_with(AppOptions {
        tweak: set_path,
        ..AppOptions::default()
    })
    .await;
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let symbol = instrument(&app).await;
    let old = resting_buy(&app, &symbol, "1", "5.00").await;
    let key = Uuid::new_v4();
    let replaced = replace(
        &app,
        json!({ "orderId": old["id"], "idempotencyKey": key, "limitPrice": "5.05" }),
    )
    .await;
    let line = lines().pop().unwrap();
    assert_eq!(
        (
            &line["mutation"],
            &line["outcome"],
            &line["idempotency_key"]
        ),
        (
            &json!("replaceOrder"),
            &json!("OK"),
            &json!(key.to_string())
        )
    );
    assert_eq!(line["broker_order_id"], replaced["order"]["brokerOrderId"]);
    assert_eq!(line["input"]["limitPrice"], "5.05");
    app.data(
        CLOSE,
        json!({ "input": { "symbol": symbol, "idempotencyKey": Uuid::new_v4() } }),
    )
    .await;
    let line = lines().pop().unwrap();
    assert_eq!(
        (
            &line["mutation"],
            &line["outcome"],
            &line["input"]["symbol"]
        ),
        (
            &json!("closePosition"),
            &json!("POSITION_NOT_FOUND"),
            &json!(symbol)
        )
    );
    app.data(
        CANCEL_ALL,
        json!({ "input": { "idempotencyKey": Uuid::new_v4() } }),
    )
    .await;
    let line = lines().pop().unwrap();
    assert_eq!(
        (&line["mutation"], &line["outcome"]),
        (&json!("cancelAllOrders"), &json!("OK"))
    );
    assert_eq!(lines().len(), 4, "submit, replace, close, cancel all");
    let _ = std::fs::remove_file(&path);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

crate::in_both_dialects!(
    an_opg_order_waits_for_the_opening_auction,
    replace_a_resting_limit_order_once_per_key,
    a_filled_order_is_not_replaceable,
    close_a_long_position,
    close_a_short_position,
    cancel_all_cancels_open_orders_and_leaves_filled_ones,
    commit_then_fail_never_replaces_twice_over_200_retried_replaces,
);
