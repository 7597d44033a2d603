//! The generic v1 dialect's JSON, as serde structs private to the adapter.
//!
//! These are deliberately separate from the domain types and from broker-sim's own
//! structs: each side writes the wire format down independently, so a
//! misreading cannot hide on both sides at once. Decimals are read and written as
//! JSON strings only — a float from the broker is a decode error, not a rounded price.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{
    Account, AccountStatus, Instrument, NewOrder, Order, OrderReplacement, OrderSide, OrderStatus,
    OrderStatusFilter, OrderType, Page, Position, Quote, TimeInForce, TradingHours,
};

/// Declares a wire enum mirroring a domain enum variant for variant, with both
/// conversions; the exhaustive matches make a new domain variant a compile error here.
macro_rules! wire_enum {
    ($wire:ident <=> $domain:ident { $($variant:ident),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub(super) enum $wire { $($variant),+ }

        impl From<$wire> for $domain {
            fn from(wire: $wire) -> Self {
                match wire { $($wire::$variant => $domain::$variant),+ }
            }
        }

        impl From<$domain> for $wire {
            fn from(domain: $domain) -> Self {
                match domain { $($domain::$variant => $wire::$variant),+ }
            }
        }
    };
}

wire_enum!(AccountStatusDto <=> AccountStatus { Active, Restricted, Closed });
wire_enum!(SideDto <=> OrderSide { Buy, Sell });
wire_enum!(OrderTypeDto <=> OrderType { Market, Limit, Stop, StopLimit });
wire_enum!(TimeInForceDto <=> TimeInForce { Day, Gtc, Ioc, Fok, Opg, Cls });
wire_enum!(OrderStatusDto <=> OrderStatus {
    Pending, Accepted, PartiallyFilled, Filled, Canceled, PendingCancel, Rejected, Expired,
});

/// The `status=` query value of `GET /v1/orders`.
pub(super) fn status_filter(filter: OrderStatusFilter) -> &'static str {
    match filter {
        OrderStatusFilter::Open => "open",
        OrderStatusFilter::Closed => "closed",
        OrderStatusFilter::All => "all",
    }
}

/// `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Deserialize)]
pub(super) struct ListDto<T> {
    data: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
}

impl<T> ListDto<T> {
    /// An empty cursor is treated as the end: following it would ask for page one again.
    pub(super) fn into_page<D>(self, convert: impl FnMut(T) -> D) -> Page<D> {
        Page {
            items: self.data.into_iter().map(convert).collect(),
            next_cursor: self.next_cursor.filter(|c| !c.is_empty()),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct AccountDto {
    id: String,
    account_number: String,
    status: AccountStatusDto,
    currency: String,
    #[serde(with = "rust_decimal::serde::str")]
    cash: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    buying_power: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    equity: Decimal,
    updated_at: DateTime<Utc>,
}

impl AccountDto {
    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Account {
        Account {
            id: self.id,
            account_number: self.account_number,
            status: self.status.into(),
            currency: self.currency,
            cash: self.cash,
            buying_power: self.buying_power,
            equity: self.equity,
            updated_at: self.updated_at,
            as_of,
        }
    }
}

#[derive(Deserialize)]
struct TradingHoursDto {
    timezone: String,
    open: String,
    close: String,
}

/// A quote, over REST (`GET /v1/quotes`) and on the stream (`"type":"quote"`).
#[derive(Deserialize)]
pub(super) struct QuoteDto {
    symbol: String,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    bid: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    bid_size: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    ask: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    ask_size: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    last: Option<Decimal>,
    timestamp: DateTime<Utc>,
}

impl QuoteDto {
    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Quote {
        Quote {
            symbol: self.symbol,
            bid: self.bid,
            bid_size: self.bid_size,
            ask: self.ask,
            ask_size: self.ask_size,
            last: self.last,
            at: self.timestamp,
            as_of,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct QuotesDto {
    pub data: Vec<QuoteDto>,
}

#[derive(Deserialize)]
pub(super) struct InstrumentDto {
    symbol: String,
    name: String,
    tradable: bool,
    #[serde(with = "rust_decimal::serde::str")]
    tick_size: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    lot_size: Decimal,
    currency: String,
    #[serde(default)]
    trading_hours: Option<TradingHoursDto>,
}

impl From<InstrumentDto> for Instrument {
    fn from(dto: InstrumentDto) -> Self {
        Instrument {
            symbol: dto.symbol,
            name: dto.name,
            tradable: dto.tradable,
            tick_size: dto.tick_size,
            lot_size: dto.lot_size,
            currency: dto.currency,
            trading_hours: dto.trading_hours.map(|h| TradingHours {
                timezone: h.timezone,
                open: h.open,
                close: h.close,
            }),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct PositionDto {
    symbol: String,
    #[serde(with = "rust_decimal::serde::str")]
    quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    average_price: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    market_value: Option<Decimal>,
    updated_at: DateTime<Utc>,
}

impl PositionDto {
    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Position {
        Position {
            symbol: self.symbol,
            quantity: self.quantity,
            average_price: self.average_price,
            market_value: self.market_value,
            updated_at: self.updated_at,
            as_of,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct OrderDto {
    id: String,
    /// A string, not a `Uuid`: orders placed by other clients of the same account may
    /// carry keys that are not UUIDs, and that must not make the whole list unreadable.
    #[serde(default)]
    idempotency_key: Option<String>,
    symbol: String,
    side: SideDto,
    #[serde(rename = "type")]
    order_type: OrderTypeDto,
    #[serde(with = "rust_decimal::serde::str")]
    quantity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    filled_quantity: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    limit_price: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    stop_price: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    average_fill_price: Option<Decimal>,
    time_in_force: TimeInForceDto,
    status: OrderStatusDto,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl OrderDto {
    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Order {
        Order {
            idempotency_key: self
                .idempotency_key
                .and_then(|key| Uuid::parse_str(&key).ok()),
            id: self.id,
            symbol: self.symbol,
            side: self.side.into(),
            order_type: self.order_type.into(),
            quantity: self.quantity,
            filled_quantity: self.filled_quantity,
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            average_fill_price: self.average_fill_price,
            time_in_force: self.time_in_force.into(),
            status: self.status.into(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            as_of,
            broker_status: None,
        }
    }
}

/// The body of `POST /v1/orders`. The idempotency key travels in a header, not here.
#[derive(Serialize)]
pub(super) struct NewOrderDto<'a> {
    symbol: &'a str,
    side: SideDto,
    #[serde(rename = "type")]
    order_type: OrderTypeDto,
    #[serde(with = "rust_decimal::serde::str")]
    quantity: Decimal,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    limit_price: Option<Decimal>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    stop_price: Option<Decimal>,
    time_in_force: TimeInForceDto,
}

impl<'a> From<&'a NewOrder> for NewOrderDto<'a> {
    fn from(order: &'a NewOrder) -> Self {
        NewOrderDto {
            symbol: &order.symbol,
            side: order.side.into(),
            order_type: order.order_type.into(),
            quantity: order.quantity,
            limit_price: order.limit_price,
            stop_price: order.stop_price,
            time_in_force: order.time_in_force.into(),
        }
    }
}

/// The body of `PATCH /v1/orders/{id}`: what changes. The key travels in a header.
#[derive(Serialize)]
pub(super) struct ReplaceOrderDto {
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    quantity: Option<Decimal>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    limit_price: Option<Decimal>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    stop_price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_in_force: Option<TimeInForceDto>,
}

impl From<&OrderReplacement> for ReplaceOrderDto {
    fn from(r: &OrderReplacement) -> Self {
        ReplaceOrderDto {
            quantity: r.quantity,
            limit_price: r.limit_price,
            stop_price: r.stop_price,
            time_in_force: r.time_in_force.map(Into::into),
        }
    }
}

/// `{"error": {"code", "message", "field"}}`.
#[derive(Deserialize)]
pub(super) struct ErrorEnvelopeDto {
    pub(super) error: ErrorDto,
}

#[derive(Deserialize)]
pub(super) struct ErrorDto {
    pub(super) code: String,
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) field: Option<String>,
}
