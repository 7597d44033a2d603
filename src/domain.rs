//! Domain types: what the gateway knows about accounts, instruments, positions and
//! orders, independent of any broker's wire format.
//!
//! Adapters convert their JSON into these at their boundary; everything above the
//! adapter (cache, orders, GraphQL) sees only these. Money and quantities are
//! `Decimal` because a float cannot hold a cent exactly.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AccountStatus {
    Active,
    Restricted,
    Closed,
}

/// Serializable, like the other values the read cache holds, for the L2 cache
/// replicas share (`cache::l2`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// The broker's account id; also what caches are partitioned by.
    pub id: String,
    pub account_number: String,
    pub status: AccountStatus,
    pub currency: String,
    pub cash: Decimal,
    pub buying_power: Decimal,
    pub equity: Decimal,
    pub updated_at: DateTime<Utc>,
    /// When brokergraph read this from the broker, so a frontend can show staleness.
    pub as_of: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TradingHours {
    pub timezone: String,
    pub open: String,
    pub close: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Instrument {
    pub symbol: String,
    pub name: String,
    pub tradable: bool,
    /// Every price must be a whole multiple of this.
    pub tick_size: Decimal,
    /// Every quantity must be a whole multiple of this.
    pub lot_size: Decimal,
    pub currency: String,
    pub trading_hours: Option<TradingHours>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub symbol: String,
    pub quantity: Decimal,
    pub average_price: Decimal,
    /// `None` when the broker has no price for the symbol right now.
    pub market_value: Option<Decimal>,
    pub updated_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderSide {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Market,
    Limit,
    Stop,
    StopLimit,
}

impl OrderType {
    pub fn needs_limit_price(self) -> bool {
        matches!(self, OrderType::Limit | OrderType::StopLimit)
    }

    pub fn needs_stop_price(self) -> bool {
        matches!(self, OrderType::Stop | OrderType::StopLimit)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    Day,
    Gtc,
    Ioc,
    Fok,
    /// At the open: only in the next opening auction; what does not fill there is
    /// canceled (market-on-open, limit-on-open).
    Opg,
    /// At the close: only in the closing auction, the rest canceled.
    Cls,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Accepted,
    PartiallyFilled,
    Filled,
    Canceled,
    PendingCancel,
    Rejected,
    Expired,
}

impl OrderStatus {
    /// A terminal order can no longer change, which is what lets a cache keep it long.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled
                | OrderStatus::Canceled
                | OrderStatus::Rejected
                | OrderStatus::Expired
        )
    }
}

/// Serializable because idempotency records store it for replay.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    /// The broker's own order id.
    pub id: String,
    pub idempotency_key: Option<Uuid>,
    pub symbol: String,
    pub side: OrderSide,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub filled_quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub average_fill_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    /// The broker's own status word (`done_for_day`, `held`...) when its dialect has
    /// more states than `OrderStatus`, so a frontend can show what the broker said.
    /// `None` where the dialect's statuses are ours. Defaulted so idempotency records
    /// stored before this field existed still replay.
    #[serde(default)]
    pub broker_status: Option<String>,
}

/// Which orders a list asks for; mirrors the broker's `status` filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub enum OrderStatusFilter {
    Open,
    Closed,
    #[default]
    All,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct OrderQuery {
    pub status: OrderStatusFilter,
    pub symbol: Option<String>,
}

/// One request for one page of a broker list. `cursor: None` is the first page.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: u32,
}

/// One page as the broker returned it; `next_cursor: None` means this is the last page.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An order as the client asked for it, after validation. The idempotency key is
/// part of it because the broker dedups on it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewOrder {
    pub idempotency_key: Uuid,
    pub symbol: String,
    pub side: OrderSide,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
}

/// What a submit returned: the order, and whether the broker replayed an earlier
/// submit with the same idempotency key instead of creating a new order.
#[derive(Clone, Debug, PartialEq)]
pub struct Submitted {
    pub order: Order,
    pub replayed: bool,
}

/// A change to an open order, sent as a replace: the broker ends the order and places
/// a new one with these values, everything absent taken from the old order. The
/// idempotency key makes it safe to resend: a broker that has seen it answers the same
/// replacement instead of making a second one.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderReplacement {
    pub idempotency_key: Uuid,
    pub quantity: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: Option<TimeInForce>,
}

/// What a replace returned: the new order, the replaced one as read just after
/// (`None` when it could not be read), and whether the broker replayed an earlier
/// replace with the same key.
#[derive(Clone, Debug, PartialEq)]
pub struct Replaced {
    pub order: Order,
    pub replaced: Option<Order>,
    pub replayed: bool,
}

/// A request to close (all or part of) the position in `symbol` with an order of the
/// opposite side, under an idempotency key like a submit.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionClose {
    pub idempotency_key: Uuid,
    pub symbol: String,
    /// `None` closes the whole position.
    pub quantity: Option<Decimal>,
}

/// What a cancel of every open order (of one symbol, or all) did: the orders now
/// canceled (or being canceled), and those the broker would not cancel, as they stand.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CanceledOrders {
    pub canceled: Vec<Order>,
    pub not_canceled: Vec<Order>,
}

/// What happened to an order, as the gateway tells subscribers. Brokers name more
/// events than this (Alpaca's `done_for_day`, `calculated`...); those fold into
/// `Other` and keep their own name beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum OrderEventKind {
    New,
    Accepted,
    PartialFill,
    Fill,
    Canceled,
    PendingCancel,
    Expired,
    Rejected,
    Replaced,
    /// Not a broker event: the gateway found this state by reading the broker over
    /// REST after a gap in the stream.
    Reconciled,
    Other,
}

/// One execution that an order event reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fill {
    pub execution_id: String,
    pub price: Decimal,
    pub quantity: Decimal,
}

/// One order event from the broker's stream, in domain terms. Serialized only
/// into the stream replicas share (`streams`), never onto the wire.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrderEvent {
    pub kind: OrderEventKind,
    /// The broker's own name for the event (`partial_fill`, `done_for_day`...).
    pub broker_event: String,
    /// The whole order as it is after the event.
    pub order: Order,
    pub fill: Option<Fill>,
    /// The account's position in the order's symbol after the event, when told.
    pub position_quantity: Option<Decimal>,
    pub at: DateTime<Utc>,
}

/// The market in one symbol at one moment: the best bid and ask with their sizes,
/// and the last trade where the broker reports it (Alpaca's latest quote does not).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quote {
    pub symbol: String,
    pub bid: Option<Decimal>,
    pub bid_size: Option<Decimal>,
    pub ask: Option<Decimal>,
    pub ask_size: Option<Decimal>,
    pub last: Option<Decimal>,
    /// When the broker stamped the quote.
    pub at: DateTime<Utc>,
    /// When the gateway received it: how old a cached or streamed value is.
    pub as_of: DateTime<Utc>,
}
