//! Submits, replays, cancels and order lists over a scripted Alpaca.

use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;

const T0: &str = "2026-03-02T15:30:00.123456Z";

#[tokio::test]
async fn a_submit_carries_the_credentials_and_a_client_id_derived_from_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/orders"))
        .and(header("APCA-API-KEY-ID", KEY_ID))
        .and(header("APCA-API-SECRET-KEY", SECRET))
        .and(body_partial_json(json!({
            "symbol": "AAPL", "qty": "10", "side": "buy", "type": "limit",
            "time_in_force": "day", "limit_price": "150.25", "client_order_id": CLIENT_ID
        })))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(order_json(ORDER_ID, "accepted", T0)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let submitted = broker(&server).submit_order(&new_order()).await.unwrap();
    assert!(!submitted.replayed);
    let o = submitted.order;
    assert_eq!(o.id, ORDER_ID);
    assert_eq!(o.idempotency_key, Some(new_order().idempotency_key));
    assert_eq!(o.limit_price, Some(d("150.25")));
    assert_eq!(o.average_fill_price, None);
    assert_eq!(o.status, OrderStatus::Accepted);
    assert_eq!(o.broker_status.as_deref(), Some("accepted"));
}

async fn duplicate_then_lookup(stored: Value) -> Result<Submitted, BrokerError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/orders"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(
                json!({"code": 40010001, "message": "client_order_id must be unique"}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .and(query_param("client_order_id", CLIENT_ID))
        .respond_with(ResponseTemplate::new(200).set_body_json(stored))
        .expect(1)
        .mount(&server)
        .await;
    broker(&server).submit_order(&new_order()).await
}

#[tokio::test]
async fn a_422_duplicate_client_id_replays_the_stored_order() {
    let submitted = duplicate_then_lookup(order_json(ORDER_ID, "new", T0))
        .await
        .unwrap();
    assert!(submitted.replayed);
    assert_eq!(submitted.order.id, ORDER_ID);
}

#[tokio::test]
async fn a_duplicate_client_id_on_a_different_order_is_a_key_reuse() {
    let mut other = order_json(ORDER_ID, "new", T0);
    other["qty"] = json!("99");
    match duplicate_then_lookup(other).await {
        Err(BrokerError::Rejected {
            code, status: 422, ..
        }) => {
            assert_eq!(code, "idempotency_key_reused")
        }
        other => panic!("expected a reuse rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_outcome_is_settled_by_reading_the_order_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/orders"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let lookup = Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_json(ORDER_ID, "new", T0)))
        .up_to_n_times(1)
        .mount_as_scoped(&server)
        .await;
    let submitted = broker(&server).submit_order(&new_order()).await.unwrap();
    assert!(!submitted.replayed, "this very send placed it");
    drop(lookup);
    Mock::given(method("GET"))
        .and(path("/v2/orders:by_client_order_id"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 40410000, "message": "order not found"})),
        )
        .mount(&server)
        .await;
    let err = broker(&server)
        .submit_order(&new_order())
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
}

#[tokio::test]
async fn a_message_without_a_code_is_a_rejection_with_that_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/orders"))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"message": "qty must be > 0"})),
        )
        .mount(&server)
        .await;
    match broker(&server).submit_order(&new_order()).await {
        Err(BrokerError::Rejected { message, code, .. }) => {
            assert_eq!(message, "qty must be > 0");
            assert_eq!(code, "unknown");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn insufficient_buying_power_is_a_403_business_refusal_not_bad_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/orders"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"code": 40310000, "message": "insufficient buying power"})),
        )
        .mount(&server)
        .await;
    match broker(&server).submit_order(&new_order()).await {
        Err(BrokerError::Rejected { code, .. }) => assert_eq!(code, "insufficient_buying_power"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_204_cancel_is_read_back_with_its_current_status() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v2/orders/{ORDER_ID}")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/orders/{ORDER_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(order_json(
            ORDER_ID,
            "pending_cancel",
            T0,
        )))
        .mount(&server)
        .await;
    let order = broker(&server).cancel_order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::PendingCancel);
}

#[tokio::test]
async fn a_422_cancel_is_not_cancelable_and_an_unknown_id_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"code": 42210000, "message": "order is not cancelable"})),
        )
        .mount(&server)
        .await;
    match broker(&server).cancel_order(ORDER_ID).await {
        Err(BrokerError::Rejected { code, .. }) => assert_eq!(code, "order_not_cancelable"),
        other => panic!("{other:?}"),
    }
    let err = broker(&server)
        .cancel_order("not-a-uuid")
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::NotFound));
}

#[tokio::test]
async fn unknown_statuses_and_types_are_mapped_not_fatal() {
    let server = MockServer::start().await;
    let mut o = order_json(ORDER_ID, "some_future_status", T0);
    o["type"] = json!("trailing_stop");
    o["order_type"] = json!("trailing_stop");
    o["time_in_force"] = json!("some_future_tif");
    o["qty"] = Value::Null;
    o["notional"] = json!("500");
    o["filled_qty"] = json!("1.5");
    Mock::given(method("GET"))
        .and(path(format!("/v2/orders/{ORDER_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(o))
        .mount(&server)
        .await;
    let order = broker(&server).order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.broker_status.as_deref(), Some("some_future_status"));
    assert_eq!(order.order_type, OrderType::Stop);
    assert_eq!(order.time_in_force, TimeInForce::Day, "an unknown word");
    assert_eq!(order.quantity, d("1.5"));
}
