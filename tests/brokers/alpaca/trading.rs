//! Replace, close and cancel-all over a scripted Alpaca: what goes on the wire, and
//! how a lost answer or a duplicate is settled without a second action.

use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;

const T0: &str = "2026-03-02T15:30:00.123456Z";
const NEW_ID: &str = "9f1b2c3d-0000-4000-8000-000000000001";

fn replacement() -> OrderReplacement {
    OrderReplacement {
        idempotency_key: Uuid::parse_str(KEY).unwrap(),
        quantity: Some(d("12")),
        limit_price: Some(d("151.00")),
        stop_price: None,
        time_in_force: None,
    }
}

/// The replacement as Alpaca shows it: new id, `replaces` the old one.
fn replacing(old: &str) -> Value {
    let mut o = order_json(NEW_ID, "pending_new", T0);
    o["qty"] = json!("12");
    o["limit_price"] = json!("151.00");
    o["replaces"] = json!(old);
    o
}

async fn old_order_reads(server: &MockServer) {
    let mut old = order_json(ORDER_ID, "replaced", T0);
    old["replaced_by"] = json!(NEW_ID);
    Mock::given(method("GET"))
        .and(path(format!("/v2/orders/{ORDER_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(old))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_replace_patches_with_the_keys_client_id_and_reads_the_old_order_back() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path(format!("/v2/orders/{ORDER_ID}")))
        .and(body_partial_json(json!({
            "qty": "12", "limit_price": "151.00", "client_order_id": CLIENT_ID
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(replacing(ORDER_ID)))
        .expect(1)
        .mount(&server)
        .await;
    old_order_reads(&server).await;
    let replaced = broker(&server)
        .replace_order(ORDER_ID, &replacement())
        .await
        .unwrap();
    assert!(!replaced.replayed);
    assert_eq!(replaced.order.id, NEW_ID);
    assert_eq!(replaced.order.quantity, d("12"));
    let old = replaced.replaced.unwrap();
    assert_eq!(old.status, OrderStatus::Canceled);
    assert_eq!(old.broker_status.as_deref(), Some("replaced"));
}

#[tokio::test]
async fn a_duplicate_or_a_lost_answer_finds_the_replacement_under_the_client_id() {
    for (status, body, replayed) in [
        (
            422,
            json!({"code": 40010001, "message": "client_order_id must be unique"}),
            true,
        ),
        (
            503,
            json!({"code": 50010000, "message": "internal server error"}),
            false,
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("PATCH"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/orders:by_client_order_id"))
            .and(query_param("client_order_id", CLIENT_ID))
            .respond_with(ResponseTemplate::new(200).set_body_json(replacing(ORDER_ID)))
            .expect(1)
            .mount(&server)
            .await;
        old_order_reads(&server).await;
        let replaced = broker(&server)
            .replace_order(ORDER_ID, &replacement())
            .await
            .unwrap();
        assert_eq!(
            (replaced.order.id.as_str(), replaced.replayed),
            (NEW_ID, replayed),
            "{status}"
        );
    }
}

#[tokio::test]
async fn the_client_id_on_an_order_that_replaced_another_is_a_key_reuse() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(
                json!({"code": 40010001, "message": "client_order_id must be unique"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(replacing("00000000-0000-4000-8000-00000000beef")),
        )
        .mount(&server)
        .await;
    match broker(&server)
        .replace_order(ORDER_ID, &replacement())
        .await
    {
        Err(BrokerError::Rejected { code, .. }) => assert_eq!(code, "idempotency_key_reused"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_order_that_is_over_is_not_replaceable() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"code": 42210000, "message": "order is filled and can no longer be replaced"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 40410000, "message": "order not found"})),
        )
        .mount(&server)
        .await;
    match broker(&server)
        .replace_order(ORDER_ID, &replacement())
        .await
    {
        Err(BrokerError::Rejected { code, status, .. }) => {
            assert_eq!((status, code.as_str()), (422, "order_not_replaceable"))
        }
        other => panic!("{other:?}"),
    }
}

fn close(quantity: Option<&str>) -> PositionClose {
    PositionClose {
        idempotency_key: Uuid::parse_str(KEY).unwrap(),
        symbol: "AAPL".into(),
        quantity: quantity.map(d),
    }
}

async fn nothing_under_the_key(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 40410000, "message": "order not found"})),
        )
        .up_to_n_times(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_short_is_closed_by_a_keyed_market_buy() {
    let server = MockServer::start().await;
    nothing_under_the_key(&server).await;
    Mock::given(method("GET"))
        .and(path("/v2/positions/AAPL"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": "AAPL",
            "exchange": "NASDAQ", "asset_class": "us_equity", "avg_entry_price": "150.00",
            "qty": "-7", "qty_available": "-7", "side": "short", "market_value": "-1050.00",
            "cost_basis": "-1050.00"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut answer = order_json(NEW_ID, "pending_new", T0);
    answer["side"] = json!("buy");
    answer["qty"] = json!("7");
    Mock::given(method("POST"))
        .and(path("/v2/orders"))
        .and(body_partial_json(json!({
            "symbol": "AAPL", "qty": "7", "side": "buy", "type": "market",
            "time_in_force": "day", "client_order_id": CLIENT_ID
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let closed = broker(&server).close_position(&close(None)).await.unwrap();
    assert_eq!(
        (closed.order.side, closed.order.quantity, closed.replayed),
        (OrderSide::Buy, d("7"), false)
    );
}

#[tokio::test]
async fn a_close_already_under_the_key_is_the_answer_and_no_position_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_json(NEW_ID, "filled", T0)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let again = broker(&server)
        .close_position(&close(Some("2")))
        .await
        .unwrap();
    assert_eq!((again.order.id.as_str(), again.replayed), (NEW_ID, true));
    nothing_under_the_key(&server).await;
    Mock::given(method("GET"))
        .and(path("/v2/positions/AAPL"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 40410000, "message": "position not found"})),
        )
        .mount(&server)
        .await;
    match broker(&server).close_position(&close(None)).await {
        Err(BrokerError::Rejected { code, .. }) => assert_eq!(code, "position_not_found"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cancel_all_reads_a_207_and_reports_what_alpaca_would_not_cancel() {
    let server = MockServer::start().await;
    let (a, b) = (ORDER_ID, NEW_ID);
    Mock::given(method("DELETE"))
        .and(path("/v2/orders"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!([
            {"id": a, "status": 200, "body": {}},
            {"id": b, "status": 500, "body": {"code": 50010000, "message": "order is filled"}}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/orders"))
        .and(query_param("status", "all"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            order_json(a, "pending_cancel", T0),
            order_json(b, "filled", T0)
        ])))
        .mount(&server)
        .await;
    let result = broker(&server).cancel_all_orders(None).await.unwrap();
    let ids = |orders: &[Order]| orders.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&result.canceled), [a]);
    assert_eq!(ids(&result.not_canceled), [b]);
    assert_eq!(result.not_canceled[0].status, OrderStatus::Filled);
}
