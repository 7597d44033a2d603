//! Trading beyond submit and cancel, over HTTP: `PATCH /v1/orders/{id}` (a replace,
//! validated like a submit, under the same idempotency), auction time in force
//! (`opg`, `cls`) and short selling where it is on.

use serde_json::json;

use crate::helpers::*;

async fn resting(api: &Api, sym: &str, qty: &str, price: &str) -> serde_json::Value {
    let r = api.order(limit(sym, "buy", qty, price), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

fn path(order: &serde_json::Value) -> String {
    format!("/v1/orders/{}", order["id"].as_str().unwrap())
}

#[tokio::test]
async fn a_replace_answers_the_new_order_and_ends_the_old_one() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_price(&sym, "10.00").await;
    let old = resting(&api, &sym, "3", "5.00").await;
    let change = json!({"quantity": "4", "limit_price": "5.50"});
    let new = api.patch(&path(&old), &change, Some("rk-1")).await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert_eq!(new.header("idempotent-replayed"), None);
    assert_ne!(new.body["id"], old["id"]);
    assert_eq!(new.body["replaces"], old["id"]);
    assert_eq!(new.body["idempotency_key"], "rk-1");
    assert_eq!(
        (
            &new.body["quantity"],
            &new.body["limit_price"],
            &new.body["status"]
        ),
        (&json!("4"), &json!("5.50"), &json!("accepted"))
    );
    let before = api.get(&path(&old)).await.body;
    assert_eq!(before["status"], "canceled");
    assert_eq!(before["replaced_by"], new.body["id"]);

    // A replay is the same replacement, byte for byte; nothing new at the broker.
    let replay = api.patch(&path(&old), &change, Some("rk-1")).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, new.body);
    // The key with another change, or on another order, is a reuse.
    let other = api
        .patch(&path(&old), &json!({"quantity": "9"}), Some("rk-1"))
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused")
    );
    let elsewhere = api.patch(&path(&new.body), &change, Some("rk-1")).await;
    assert_eq!(elsewhere.code(), "idempotency_key_reused");
    // The old order is over.
    let again = api.patch(&path(&old), &change, Some("rk-2")).await;
    assert_eq!((again.status, again.code()), (422, "order_not_replaceable"));
    assert_eq!(sim.stats().await.orders_created, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_replace_is_validated_like_a_submit_and_a_refusal_changes_nothing() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_price(&sym, "10.00").await;
    let old = resting(&api, &sym, "3", "5.00").await;
    for (change, status, code, field) in [
        (json!({}), 400, "missing_field", ""),
        (json!({"side": "sell"}), 400, "unknown_field", "side"),
        (json!({"quantity": 2.5}), 400, "invalid_decimal", "quantity"),
        (
            json!({"limit_price": "5.001"}),
            422,
            "tick_size",
            "limit_price",
        ),
        (
            json!({"stop_price": "4.00"}),
            422,
            "unexpected_stop_price",
            "stop_price",
        ),
        (
            json!({"quantity": "0"}),
            422,
            "invalid_quantity",
            "quantity",
        ),
        (
            json!({"quantity": "1000000"}),
            422,
            "insufficient_buying_power",
            "quantity",
        ),
    ] {
        let r = api.patch(&path(&old), &change, Some("vk")).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "{change}"
        );
    }
    let unchanged = api.get(&path(&old)).await.body;
    assert_eq!(
        (&unchanged["status"], &unchanged["replaced_by"]),
        (&json!("accepted"), &json!(null))
    );
    // The refusals stored nothing: the key still works.
    let ok = api
        .patch(&path(&old), &json!({"limit_price": "5.10"}), Some("vk"))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let unknown = api
        .patch(
            "/v1/orders/00000000-0000-4000-8000-000000000000",
            &json!({"quantity": "1"}),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_filled_order_is_not_replaceable() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_price(&sym, "10.00").await;
    let filled = api.order(market(&sym, "buy", "2"), None).await.body;
    assert_eq!(filled["status"], "filled");
    let r = api
        .patch(&path(&filled), &json!({"quantity": "3"}), Some("fk"))
        .await;
    assert_eq!((r.status, r.code()), (422, "order_not_replaceable"));
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("filled"));
    sim.shutdown().await;
}

#[tokio::test]
async fn auction_orders_trade_only_at_the_open_or_the_close() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_price(&sym, "10.00").await;
    let mut opg = market(&sym, "buy", "2");
    opg["time_in_force"] = json!("opg");
    let opg = api.order(opg, None).await.body;
    assert_eq!(
        (&opg["status"], &opg["time_in_force"]),
        (&json!("accepted"), &json!("opg"))
    );
    let mut cls = limit(&sym, "sell", "1", "20.00");
    cls["time_in_force"] = json!("cls");
    let mut stop = market(&sym, "buy", "1");
    stop["type"] = json!("stop");
    stop["stop_price"] = json!("11.00");
    stop["time_in_force"] = json!("opg");
    let refused = api.order(stop, None).await;
    assert_eq!(
        (refused.status, refused.code(), refused.field()),
        (422, "invalid_time_in_force", "time_in_force")
    );
    sim.tick(3).await;
    assert_eq!(api.get(&path(&opg)).await.body["status"], "accepted");
    sim.close_session().await;
    let after = api.get(&path(&opg)).await.body;
    assert_eq!(after["status"], "filled", "{after}");
    // A sell of what is held, at a limit the close does not reach: canceled there.
    let cls = api.order(cls, None).await.body;
    sim.close_session().await;
    assert_eq!(api.get(&path(&cls)).await.body["status"], "canceled");
    sim.shutdown().await;
}

#[tokio::test]
async fn selling_more_than_held_is_refused_unless_shorting_is_on() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let r = api.order(market(&sym, "sell", "3"), None).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (422, "insufficient_position", "quantity")
    );
    sim.shutdown().await;

    let sim = broker_sim::spawn(broker_sim::SimConfig {
        shorting: true,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    sim.set_price(&sym, "10.00").await;
    let (bid, _) = api.quote(&sym).await;
    assert_eq!(api.order(market(&sym, "sell", "3"), None).await.status, 201);
    let positions = api.get("/v1/positions").await.body;
    let short = &positions["data"][0];
    assert_eq!(
        (&short["symbol"], &short["quantity"], &short["market_value"]),
        (&json!(sym), &json!("-3"), &json!("-30.00"))
    );
    assert_eq!(dec(&short["average_price"]), bid, "sold short at the bid");
    assert_eq!(api.order(market(&sym, "buy", "3"), None).await.status, 201);
    assert_eq!(api.get("/v1/positions").await.body["data"], json!([]));
    sim.shutdown().await;
}
