//! Trading beyond submit and cancel, over real HTTP in both of broker-sim's dialects:
//! auction time in force (OPG, CLS).

use broker_sim::Dialect;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{spawn_app_in, TestApp};

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

crate::in_both_dialects!(an_opg_order_waits_for_the_opening_auction);
