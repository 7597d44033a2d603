//! Replace, close and cancel-all over a scripted v1 broker: the generic dialect has a
//! replace route, but no close or cancel-all, which the adapter builds from orders.

use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;

const KEY_UUID: &str = "6f1c2a2e-2b1e-4c8e-9a57-0d9a3f7f4b11";
const OLD: &str = "00000000-0000-4000-8000-000000000001";
const NEW: &str = "00000000-0000-4000-8000-000000000002";

#[tokio::test]
async fn a_replace_is_a_keyed_patch_of_what_changes() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path(format!("/v1/orders/{OLD}")))
        .and(header("Idempotency-Key", KEY_UUID))
        .and(body_json(
            json!({"limit_price": "101.00", "time_in_force": "gtc"}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Idempotent-Replayed", "true")
                .set_body_json(order_json(NEW)),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{OLD}")))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let replaced = broker(&server)
        .replace_order(
            OLD,
            &OrderReplacement {
                idempotency_key: Uuid::parse_str(KEY_UUID).unwrap(),
                quantity: None,
                limit_price: Some(d("101.00")),
                stop_price: None,
                time_in_force: Some(TimeInForce::Gtc),
            },
        )
        .await
        .unwrap();
    assert_eq!((replaced.order.id.as_str(), replaced.replayed), (NEW, true));
    assert_eq!(replaced.replaced, None, "the read back failed: left out");
}

#[tokio::test]
async fn not_replaceable_is_the_brokers_refusal() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"error": {
            "code": "order_not_replaceable", "message": "order is filled and can no longer be replaced"}})))
        .mount(&server)
        .await;
    let replacement = OrderReplacement {
        idempotency_key: Uuid::new_v4(),
        quantity: Some(d("1")),
        limit_price: None,
        stop_price: None,
        time_in_force: None,
    };
    match broker(&server).replace_order(OLD, &replacement).await {
        Err(BrokerError::Rejected { code, .. }) => assert_eq!(code, "order_not_replaceable"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_close_sells_the_long_position_under_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/orders"))
        .and(query_param("symbol", "ACME"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "next_cursor": null})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/positions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"symbol": "ACME", "quantity": "30", "average_price": "10.00", "market_value": "300.00",
             "updated_at": "2026-01-02T03:04:05Z"}], "next_cursor": null})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .and(header("Idempotency-Key", KEY_UUID))
        .and(body_json(
            json!({"symbol": "ACME", "side": "sell", "type": "market",
            "quantity": "30", "time_in_force": "day"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(order_json(NEW)))
        .expect(1)
        .mount(&server)
        .await;
    let close = PositionClose {
        idempotency_key: Uuid::parse_str(KEY_UUID).unwrap(),
        symbol: "ACME".into(),
        quantity: None,
    };
    let closed = broker(&server).close_position(&close).await.unwrap();
    assert_eq!(closed.order.id, NEW);
}

#[tokio::test]
async fn cancel_all_lists_open_orders_and_reports_the_ones_that_filled_meanwhile() {
    let server = MockServer::start().await;
    let open = |id: &str| {
        let mut o = order_json(id);
        o["status"] = json!("accepted");
        o
    };
    Mock::given(method("GET"))
        .and(path("/v1/orders"))
        .and(query_param("status", "open"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [open(OLD), open(NEW)], "next_cursor": null})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut canceled = open(OLD);
    canceled["status"] = json!("canceled");
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/orders/{OLD}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(canceled))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/orders/{NEW}")))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"error": {
            "code": "order_not_cancelable", "message": "order is filled"}})))
        .mount(&server)
        .await;
    let mut filled = open(NEW);
    filled["status"] = json!("filled");
    filled["filled_quantity"] = json!("10");
    Mock::given(method("GET"))
        .and(path(format!("/v1/orders/{NEW}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(filled))
        .mount(&server)
        .await;
    let result = broker(&server).cancel_all_orders(None).await.unwrap();
    assert_eq!(result.canceled.len(), 1);
    assert_eq!(result.canceled[0].id, OLD);
    assert_eq!(result.not_canceled.len(), 1);
    assert_eq!(
        (
            result.not_canceled[0].id.as_str(),
            result.not_canceled[0].status
        ),
        (NEW, OrderStatus::Filled)
    );
}
