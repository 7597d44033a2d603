//! Shared fixtures: a broker pointed at a scripted server, wire-format samples, and a
//! log collector.

use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokergraph::broker::generic::{GenericBroker, GenericBrokerConfig};
use brokergraph::broker::transport::Transport;
use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use brokergraph::secret::Secret;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const KEY: &str = "sk-test-123";

pub(crate) fn config(base_url: String, request_timeout: Duration) -> GenericBrokerConfig {
    GenericBrokerConfig {
        base_url,
        api_key: Secret::new(KEY),
        transport: Transport {
            connect_timeout: Duration::from_secs(2),
            request_timeout,
            extra_roots: Vec::new(),
        },
    }
}

pub(crate) fn broker(server: &MockServer) -> GenericBroker {
    GenericBroker::new(config(server.uri(), Duration::from_secs(5))).unwrap()
}

pub(crate) fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub(crate) fn page(limit: u32, cursor: Option<&str>) -> PageRequest {
    PageRequest {
        limit,
        cursor: cursor.map(str::to_owned),
    }
}

pub(crate) fn order_json(id: &str) -> Value {
    json!({"id": id, "idempotency_key": "6f1c2a2e-2b1e-4c8e-9a57-0d9a3f7f4b11", "symbol": "ACME",
        "side": "buy", "type": "stop_limit", "quantity": "10", "filled_quantity": "0",
        "limit_price": "100.50", "stop_price": "99.00", "time_in_force": "gtc",
        "status": "partially_filled", "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:06Z"})
}

pub(crate) fn new_order(
    order_type: OrderType,
    limit: Option<&str>,
    stop: Option<&str>,
) -> NewOrder {
    NewOrder {
        idempotency_key: Uuid::parse_str("6f1c2a2e-2b1e-4c8e-9a57-0d9a3f7f4b11").unwrap(),
        symbol: "ACME".into(),
        side: OrderSide::Buy,
        order_type,
        quantity: d("10"),
        limit_price: limit.map(d),
        stop_price: stop.map(d),
        time_in_force: TimeInForce::Gtc,
    }
}

pub(crate) async fn mount(
    server: &MockServer,
    mock: wiremock::MockBuilder,
    answer: ResponseTemplate,
) {
    mock.respond_with(answer).expect(1).mount(server).await;
}

pub(crate) enum Call {
    Account,
    Order,
    Cancel,
    Submit,
    Instruments,
}

/// What the adapter returns when the broker answers `answer` to `call`.
pub(crate) async fn error_for(call: Call, answer: ResponseTemplate) -> BrokerError {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(answer).mount(&server).await;
    let b = broker(&server);
    let result = match call {
        Call::Account => b.account().await.map(drop),
        Call::Order => b.order("o-1").await.map(drop),
        Call::Cancel => b.cancel_order("o-1").await.map(drop),
        Call::Submit => b
            .submit_order(&new_order(OrderType::Market, None, None))
            .await
            .map(drop),
        Call::Instruments => b.instruments(&page(10, Some("bad"))).await.map(drop),
    };
    result.expect_err("the call should fail")
}

pub(crate) fn envelope(status: u16, code: &str, field: Option<&str>) -> ResponseTemplate {
    let error =
        json!({"error": {"code": code, "message": format!("{code} happened"), "field": field}});
    ResponseTemplate::new(status).set_body_json(error)
}

pub(crate) fn rejected(
    status: u16,
    code: &str,
    field: Option<&str>,
) -> (u16, String, Option<String>) {
    (status, code.to_owned(), field.map(str::to_owned))
}

pub(crate) fn with_budget(status: u16, remaining: &str, reset: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("X-RateLimit-Limit", "200")
        .insert_header("X-RateLimit-Remaining", remaining)
        .insert_header("X-RateLimit-Reset", reset)
}

#[derive(Clone, Default)]
pub(crate) struct Logs(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
