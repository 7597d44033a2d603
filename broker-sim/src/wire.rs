//! The JSON the v1 API sends, over REST and over the order stream. Written only for this
//! crate: the gateway has its own structs, so a misreading of the format cannot hide on
//! both sides at once.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use crate::accounts::{cents, Account};
use crate::events::OrderEvent;
use crate::market::{Instrument, Market};
use crate::orders::{Order, OrderStatus, OrderType, Side, TimeInForce};

/// RFC 3339 UTC with millisecond precision and a `Z`, the form most clients parse.
fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[derive(Serialize)]
pub(crate) struct ListBody<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct AccountJson {
    pub id: String,
    pub account_number: String,
    pub status: &'static str,
    pub currency: &'static str,
    pub cash: Decimal,
    pub buying_power: Decimal,
    pub equity: Decimal,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl AccountJson {
    pub(crate) fn new(a: &Account, market: &Market) -> Self {
        AccountJson {
            id: a.id.to_string(),
            account_number: a.number.clone(),
            status: "active",
            currency: "USD",
            cash: cents(a.cash),
            buying_power: a.buying_power(),
            equity: a.equity(market),
            updated_at: a.updated_at,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct TradingHours {
    pub timezone: &'static str,
    pub open: &'static str,
    pub close: &'static str,
}

#[derive(Serialize)]
pub(crate) struct InstrumentJson {
    pub symbol: String,
    pub name: String,
    pub tradable: bool,
    pub tick_size: Decimal,
    pub lot_size: Decimal,
    pub currency: &'static str,
    pub trading_hours: TradingHours,
}

impl InstrumentJson {
    pub(crate) fn new(i: &Instrument) -> Self {
        InstrumentJson {
            symbol: i.symbol.clone(),
            name: i.name.clone(),
            tradable: i.tradable,
            tick_size: i.tick_size,
            lot_size: Decimal::from(i.lot_size),
            currency: "USD",
            trading_hours: TradingHours {
                timezone: "America/New_York",
                open: "09:30",
                close: "16:00",
            },
        }
    }
}

#[derive(Serialize)]
pub(crate) struct PositionJson {
    pub symbol: String,
    pub quantity: Decimal,
    pub average_price: Decimal,
    pub market_value: Decimal,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl PositionJson {
    pub(crate) fn new(symbol: &str, p: &crate::accounts::Position, market: &Market) -> Self {
        let inst = market.get(symbol);
        PositionJson {
            symbol: symbol.to_owned(),
            quantity: p.quantity.normalize(),
            average_price: crate::orders::display_price(p.cost / p.quantity, inst),
            market_value: Account::market_value(market, symbol, p),
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct OrderJson {
    pub id: String,
    pub idempotency_key: Option<String>,
    pub symbol: String,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub filled_quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub average_fill_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
    pub status: OrderStatus,
    /// The order this one replaced (`PATCH /v1/orders/{id}`).
    pub replaces: Option<String>,
    /// The order that replaced this one; the order is then `canceled`.
    pub replaced_by: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl OrderJson {
    pub(crate) fn new(o: &Order, market: &Market) -> Self {
        Self::with_average(o, o.average_fill_price(market.get(&o.symbol)))
    }

    /// For a snapshot taken earlier, whose average was rendered at that time.
    pub(crate) fn with_average(o: &Order, average_fill_price: Option<Decimal>) -> Self {
        OrderJson {
            id: o.id.to_string(),
            idempotency_key: o.idempotency_key.clone(),
            symbol: o.symbol.clone(),
            side: o.side,
            order_type: o.order_type,
            quantity: o.quantity,
            filled_quantity: o.filled_quantity.normalize(),
            limit_price: o.limit_price,
            stop_price: o.stop_price,
            average_fill_price,
            time_in_force: o.time_in_force,
            status: o.status,
            replaces: o.replaces.map(|id| id.to_string()),
            replaced_by: o.replaced_by.map(|id| id.to_string()),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// The stream's acknowledgement of a `subscribe` or `unsubscribe`: what the connection
/// now receives, and the newest seq at that moment.
#[derive(Serialize)]
pub(crate) struct Subscribed {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub orders: bool,
    pub quotes: Vec<String>,
    pub seq: u64,
}

#[derive(Serialize)]
pub(crate) struct StreamError {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl StreamError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        StreamError {
            kind: "error",
            code,
            message: message.into(),
        }
    }
}

/// One order event on the stream; the execution fields only on fills.
#[derive(Serialize)]
pub(crate) struct StreamOrderEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    event: &'static str,
    order: OrderJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qty: Option<Decimal>,
    position_qty: Decimal,
    #[serde(serialize_with = "rfc3339")]
    timestamp: DateTime<Utc>,
}

impl StreamOrderEvent {
    pub(crate) fn new(e: &OrderEvent) -> Self {
        StreamOrderEvent {
            kind: "order",
            seq: e.seq,
            event: e.kind.name(),
            order: OrderJson::with_average(&e.order, e.average_fill_price),
            execution_id: e.execution.as_ref().map(|x| x.id.to_string()),
            price: e.execution.as_ref().map(|x| x.price),
            qty: e.execution.as_ref().map(|x| x.qty),
            position_qty: e.position_qty,
            timestamp: e.at,
        }
    }
}

/// The wire name of a status, for messages.
pub(crate) fn status_name(s: OrderStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) fn type_name(t: OrderType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A quote over REST (`GET /v1/quotes`, without `type`) and on the stream (with
/// `"type":"quote"`): one struct, so the two can never disagree on a field.
#[derive(Serialize)]
pub(crate) struct QuoteJson {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    symbol: String,
    bid: Decimal,
    bid_size: Decimal,
    ask: Decimal,
    ask_size: Decimal,
    last: Decimal,
    #[serde(serialize_with = "rfc3339")]
    timestamp: DateTime<Utc>,
}

impl QuoteJson {
    /// For REST.
    pub(crate) fn new(symbol: &str, q: &crate::market::Quote, at: DateTime<Utc>) -> Self {
        QuoteJson {
            kind: None,
            symbol: symbol.to_owned(),
            bid: q.bid,
            bid_size: q.bid_size,
            ask: q.ask,
            ask_size: q.ask_size,
            last: q.last,
            timestamp: at,
        }
    }

    /// For the stream.
    pub(crate) fn message(symbol: &str, q: &crate::market::Quote, at: DateTime<Utc>) -> Self {
        QuoteJson {
            kind: Some("quote"),
            ..QuoteJson::new(symbol, q, at)
        }
    }
}
