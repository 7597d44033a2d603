//! Queries and helpers shared by the cache tests.

use std::time::Duration;

use brokergraph::config::Config;
use serde_json::{json, Value};

use crate::common::{cheap_symbol_in, TestApp, INSTRUMENTS_FOR_PICKING};

/// What a trading screen polls: the account, positions with their instruments,
/// recent orders with theirs.
pub const DASHBOARD: &str = r#"
query Dashboard {
  account { id cash buyingPower equity asOf }
  positions(first: 20) { nodes { symbol quantity marketValue asOf instrument { symbol lotSize } } }
  orders(first: 20) { nodes { brokerOrderId symbol status asOf instrument { symbol } } }
}"#;

pub const SUBMIT: &str = r#"
mutation($input: SubmitOrderInput!) {
  submitOrder(input: $input) { order { brokerOrderId status } userErrors { code message } }
}"#;

/// Every TTL set to `ms`.
pub fn ttls(config: &mut Config, ms: u64) {
    let c = &mut config.cache;
    c.account_ttl = Duration::from_millis(ms);
    c.positions_ttl = Duration::from_millis(ms);
    c.orders_ttl = Duration::from_millis(ms);
    c.open_order_ttl = Duration::from_millis(ms);
    c.instruments_ttl = Duration::from_millis(ms);
}

/// A tradable instrument with lot size 1, found through the gateway (so the
/// gateway's throttle sees the call) and priced at 10.00 so buys are cheap.
pub async fn cheap_symbol(app: &TestApp) -> String {
    let data = app.data(INSTRUMENTS_FOR_PICKING, json!({})).await;
    cheap_symbol_in(&data, &app.sim).await
}

pub fn market_buy(symbol: &str, qty: &str) -> Value {
    json!({ "input": { "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol,
        "side": "BUY", "type": "MARKET", "quantity": qty } })
}

/// Every `asOf` anywhere in `data`.
pub fn as_ofs(data: &Value, out: &mut Vec<chrono::DateTime<chrono::Utc>>) {
    match data {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "asOf" {
                    out.push(v.as_str().unwrap().parse().expect("RFC 3339 asOf"));
                } else {
                    as_ofs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| as_ofs(v, out)),
        _ => {}
    }
}
