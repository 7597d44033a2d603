//! Fixtures: an adapter pointed at a scripted server and Alpaca-shaped JSON.

use std::str::FromStr;
use std::time::Duration;

use brokergraph::broker::alpaca::{AlpacaBroker, AlpacaBrokerConfig, Feed, Transport};
use brokergraph::domain::*;
use brokergraph::secret::Secret;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::MockServer;

pub(crate) const KEY_ID: &str = "PKTEST123";
pub(crate) const SECRET: &str = "s3cr3t-value";
pub(crate) const KEY: &str = "6f1c2a2e-2b1e-4c8e-9a57-0d9a3f7f4b11";
/// What the adapter derives from `KEY`.
pub(crate) const CLIENT_ID: &str = "bg-6f1c2a2e2b1e4c8e9a570d9a3f7f4b11";
pub(crate) const ORDER_ID: &str = "61e69015-8549-4bfd-b9c3-01e75843f47d";

pub(crate) fn broker(server: &MockServer) -> AlpacaBroker {
    AlpacaBroker::new(AlpacaBrokerConfig {
        base_url: server.uri(),
        key_id: Secret::new(KEY_ID),
        secret: Secret::new(SECRET),
        transport: Transport {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            extra_roots: Vec::new(),
        },
        data_url: server.uri(),
        feed: Feed::Iex,
    })
    .unwrap()
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

/// An order as Alpaca documents it: strings for decimals, many nulls.
pub(crate) fn order_json(id: &str, status: &str, submitted_at: &str) -> Value {
    json!({
        "id": id, "client_order_id": CLIENT_ID,
        "created_at": submitted_at, "updated_at": submitted_at, "submitted_at": submitted_at,
        "filled_at": null, "expired_at": null, "canceled_at": null, "failed_at": null,
        "replaced_at": null, "replaced_by": null, "replaces": null,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "symbol": "AAPL",
        "asset_class": "us_equity", "notional": null, "qty": "10", "filled_qty": "0",
        "filled_avg_price": null, "order_class": "", "order_type": "limit", "type": "limit",
        "side": "buy", "time_in_force": "day", "limit_price": "150.25", "stop_price": null,
        "status": status, "extended_hours": false, "legs": null, "trail_percent": null,
        "trail_price": null, "hwm": null
    })
}

pub(crate) fn new_order() -> NewOrder {
    NewOrder {
        idempotency_key: Uuid::parse_str(KEY).unwrap(),
        symbol: "AAPL".into(),
        side: OrderSide::Buy,
        order_type: OrderType::Limit,
        quantity: d("10"),
        limit_price: Some(d("150.25")),
        stop_price: None,
        time_in_force: TimeInForce::Day,
    }
}
