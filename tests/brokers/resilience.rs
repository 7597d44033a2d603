//! Retries at the wire: which requests are resent, how often, with which
//! Idempotency-Key, and when the circuit breaker stops calling at all.

use std::sync::Arc;
use std::time::Duration;

use brokergraph::broker::generic::{GenericBroker, GenericBrokerConfig};
use brokergraph::broker::transport::Transport;
use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::{NewOrder, OrderSide, OrderType, TimeInForce};
use brokergraph::resilience::{
    BreakerPolicy, BreakerState, Resilience, ResilientBroker, RetryPolicy,
};
use brokergraph::secret::Secret;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn resilient(server: &MockServer, policy: RetryPolicy) -> ResilientBroker {
    let adapter = GenericBroker::new(GenericBrokerConfig {
        base_url: server.uri(),
        api_key: Secret::new("k"),
        transport: Transport {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(300),
            extra_roots: Vec::new(),
        },
    })
    .unwrap();
    ResilientBroker::new(Arc::new(adapter), Resilience::new(policy))
}

fn account() -> Value {
    json!({ "id": "acc-1", "account_number": "PA1", "status": "active", "currency": "USD",
        "cash": "10.00", "buying_power": "10.00", "equity": "10.00", "updated_at": "2026-01-01T00:00:00Z" })
}

fn order() -> Value {
    json!({"id": "o-1", "idempotency_key": "6f1c2a2e-2b1e-4c8e-9a57-0d9a3f7f4b11", "symbol": "ACME",
        "side": "buy", "type": "market", "quantity": "1", "filled_quantity": "1",
        "time_in_force": "day", "status": "filled", "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:06Z"})
}

fn envelope(code: &str) -> Value {
    json!({ "error": { "code": code, "message": code } })
}

/// Answers `first` for the first `times` requests, then `then`.
async fn script(
    server: &MockServer,
    verb: &str,
    route: &str,
    first: ResponseTemplate,
    times: u64,
    then: ResponseTemplate,
) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(first)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(then)
        .with_priority(2)
        .mount(server)
        .await;
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_read_is_retried_through_502_503_504_until_it_succeeds() {
    for status in [502, 503, 504] {
        let server = MockServer::start().await;
        script(
            &server,
            "GET",
            "/v1/account",
            ResponseTemplate::new(status),
            2,
            ResponseTemplate::new(200).set_body_json(account()),
        )
        .await;
        let broker = resilient(&server, RetryPolicy::default());
        assert_eq!(
            broker.account().await.unwrap().account_number,
            "PA1",
            "status {status}"
        );
        assert_eq!(hits(&server).await, 3);
    }
}

#[tokio::test]
async fn a_submit_is_resent_with_the_same_idempotency_key() {
    let server = MockServer::start().await;
    script(
        &server,
        "POST",
        "/v1/orders",
        ResponseTemplate::new(503),
        2,
        ResponseTemplate::new(201).set_body_json(order()),
    )
    .await;
    let broker = resilient(&server, RetryPolicy::default());
    let key = Uuid::new_v4();
    let submitted = broker
        .submit_order(&NewOrder {
            idempotency_key: key,
            symbol: "ACME".into(),
            side: OrderSide::Buy,
            order_type: OrderType::Market,
            quantity: 1.into(),
            limit_price: None,
            stop_price: None,
            time_in_force: TimeInForce::Day,
        })
        .await
        .unwrap();
    assert_eq!(submitted.order.id, "o-1");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(
            r.headers.get("idempotency-key").unwrap().to_str().unwrap(),
            key.to_string()
        );
    }
}

#[tokio::test]
async fn answers_and_500_are_not_retried() {
    for (status, body) in [
        (400, envelope("bad")),
        (404, envelope("not_found")),
        (422, envelope("no")),
        (500, envelope("boom")),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let broker = resilient(&server, RetryPolicy::default());
        assert!(broker.account().await.is_err());
        assert_eq!(hits(&server).await, 1, "status {status} is sent once");
    }
}

#[tokio::test]
async fn retry_after_is_honoured_then_the_call_succeeds() {
    let server = MockServer::start().await;
    let limited = ResponseTemplate::new(429)
        .insert_header("Retry-After", "1")
        .set_body_json(envelope("rate_limited"));
    script(
        &server,
        "GET",
        "/v1/account",
        limited,
        1,
        ResponseTemplate::new(200).set_body_json(account()),
    )
    .await;
    let broker = resilient(&server, RetryPolicy::default());
    let started = std::time::Instant::now();
    broker.account().await.unwrap();
    assert_eq!(hits(&server).await, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited as the broker asked"
    );
}

#[tokio::test]
async fn attempts_stop_at_the_policy_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let broker = resilient(
        &server,
        RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        },
    );
    let err = broker.account().await.unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(hits(&server).await, 4);
}

#[tokio::test]
async fn an_open_circuit_fails_fast_without_calling_then_a_probe_closes_it() {
    let server = MockServer::start().await;
    script(
        &server,
        "GET",
        "/v1/account",
        ResponseTemplate::new(503),
        3,
        ResponseTemplate::new(200).set_body_json(account()),
    )
    .await;
    let policy = RetryPolicy {
        max_attempts: 1,
        breaker: BreakerPolicy {
            window: 3,
            min_calls: 3,
            failure_ratio: 1.0,
            open_for: Duration::from_millis(300),
        },
        ..RetryPolicy::default()
    };
    let broker = resilient(&server, policy);
    for _ in 0..3 {
        assert!(broker.account().await.is_err());
    }
    assert_eq!(broker.layer().breaker().state(), BreakerState::Open);
    let err = broker.account().await.unwrap_err();
    assert!(matches!(err, BrokerError::CircuitOpen));
    assert!(
        !err.outcome_unknown(),
        "nothing was sent, so a mutation's outcome is known"
    );
    assert_eq!(hits(&server).await, 3, "an open circuit sends nothing");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        broker.account().await.unwrap().account_number,
        "PA1",
        "the probe goes through"
    );
    assert_eq!(broker.layer().breaker().state(), BreakerState::Closed);
}
