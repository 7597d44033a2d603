//! Alpaca Trading API v2 JSON, as serde structs private to the adapter.
//!
//! Written from Alpaca's documentation, independently of broker-sim's Alpaca dialect,
//! so a misreading cannot hide on both sides. Alpaca adds fields over time and sends
//! many as `null`, so everything we do not need is ignored and everything optional is
//! `Option`. Enumerations (status, type, time in force) are read as plain strings and
//! mapped by hand: an unknown word must degrade to a sensible domain value, never fail
//! the decode of a whole list.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::mapping;
use crate::domain::{
    Account, Instrument, NewOrder, Order, OrderReplacement, OrderSide, OrderType, Position,
    TimeInForce, TradingHours,
};

/// `GET /v2/account`. Alpaca has no `updated_at` on the account.
#[derive(Deserialize)]
pub(super) struct AccountDto {
    id: String,
    account_number: String,
    /// `ACTIVE`, `ACCOUNT_UPDATED`, `ACCOUNT_CLOSED`, `SUBMITTED`... (upper case).
    status: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    cash: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    buying_power: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    equity: Decimal,
    #[serde(default)]
    trading_blocked: Option<bool>,
    #[serde(default)]
    account_blocked: Option<bool>,
}

impl AccountDto {
    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Account {
        let blocked = self.trading_blocked == Some(true) || self.account_blocked == Some(true);
        Account {
            status: mapping::account_status(&self.status, blocked),
            id: self.id,
            account_number: self.account_number,
            currency: self.currency.unwrap_or_else(|| "USD".to_owned()),
            cash: self.cash,
            buying_power: self.buying_power,
            equity: self.equity,
            updated_at: as_of,
            as_of,
        }
    }
}

/// `GET /v2/assets[/{symbol}]`. Tick and lot are not always sent (see `mapping`).
#[derive(Deserialize)]
pub(super) struct AssetDto {
    pub(super) symbol: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default, rename = "class")]
    pub(super) asset_class: Option<String>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) tradable: bool,
    #[serde(default)]
    pub(super) fractionable: bool,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub(super) min_trade_increment: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub(super) price_increment: Option<Decimal>,
}

impl AssetDto {
    /// The asset as a domain instrument, with the facts Alpaca does not send derived
    /// by its published rules (`mapping`). `hours` is the session from the calendar.
    pub(super) fn into_domain(self, hours: Option<&TradingHours>) -> Instrument {
        let active = self.status.as_deref().is_none_or(|s| s == "active");
        Instrument {
            name: self.name.unwrap_or_else(|| self.symbol.clone()),
            currency: "USD".into(),
            tradable: self.tradable && active,
            tick_size: mapping::tick(self.price_increment),
            lot_size: mapping::lot(self.min_trade_increment, self.fractionable),
            trading_hours: mapping::trading_hours(self.asset_class.as_deref(), hours),
            symbol: self.symbol,
        }
    }
}

/// `GET /v2/positions`. Alpaca has no per-position timestamp.
#[derive(Deserialize)]
pub(super) struct PositionDto {
    pub(super) symbol: String,
    #[serde(with = "rust_decimal::serde::str")]
    qty: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    avg_entry_price: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    market_value: Option<Decimal>,
    /// `long` or `short`.
    #[serde(default)]
    side: Option<String>,
}

impl PositionDto {
    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Position {
        // A short is a negative quantity for us, whether or not Alpaca signs `qty`.
        let short = self.side.as_deref() == Some("short");
        let quantity = if short && self.qty > Decimal::ZERO {
            -self.qty
        } else {
            self.qty
        };
        Position {
            symbol: self.symbol,
            quantity,
            average_price: self.avg_entry_price,
            market_value: self.market_value,
            updated_at: as_of,
            as_of,
        }
    }
}

/// One order. `qty` is null for a notional (dollar amount) order.
#[derive(Deserialize)]
pub(super) struct OrderDto {
    pub(super) id: String,
    #[serde(default)]
    pub(super) client_order_id: Option<String>,
    pub(super) created_at: DateTime<Utc>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    /// What `GET /v2/orders` sorts and filters on (`after`/`until`).
    #[serde(default)]
    submitted_at: Option<DateTime<Utc>>,
    pub(super) symbol: String,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    qty: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    filled_qty: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    filled_avg_price: Option<Decimal>,
    /// `type` and `order_type` carry the same value; older payloads have only `type`.
    #[serde(default, rename = "type")]
    order_type: Option<String>,
    #[serde(default, rename = "order_type")]
    order_type_alias: Option<String>,
    side: String,
    time_in_force: String,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    limit_price: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    stop_price: Option<Decimal>,
    status: String,
    /// The order this one replaced (`PATCH /v2/orders/{id}`).
    #[serde(default)]
    pub(super) replaces: Option<String>,
}

impl OrderDto {
    /// The paging key of `GET /v2/orders`.
    pub(super) fn submitted_at(&self) -> DateTime<Utc> {
        self.submitted_at.unwrap_or(self.created_at)
    }

    pub(super) fn into_domain(self, as_of: DateTime<Utc>) -> Order {
        let filled = self.filled_qty.unwrap_or_default();
        let quantity = self.qty.unwrap_or(filled);
        let kind = self
            .order_type
            .or(self.order_type_alias)
            .unwrap_or_default();
        Order {
            idempotency_key: self
                .client_order_id
                .as_deref()
                .and_then(super::client_id::to_key),
            status: mapping::order_status(&self.status, filled, quantity),
            broker_status: Some(self.status),
            id: self.id,
            symbol: self.symbol,
            side: mapping::side(&self.side),
            order_type: mapping::order_type(&kind),
            quantity,
            filled_quantity: filled,
            limit_price: self.limit_price,
            stop_price: self.stop_price,
            average_fill_price: self.filled_avg_price,
            time_in_force: mapping::time_in_force(&self.time_in_force),
            created_at: self.created_at,
            updated_at: self.updated_at.unwrap_or(self.created_at),
            as_of,
        }
    }
}

/// The body of `POST /v2/orders`. Alpaca accepts numbers as strings.
#[derive(Serialize)]
pub(super) struct NewOrderDto<'a> {
    symbol: &'a str,
    #[serde(with = "rust_decimal::serde::str")]
    qty: Decimal,
    side: &'static str,
    #[serde(rename = "type")]
    order_type: &'static str,
    time_in_force: &'static str,
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
    client_order_id: &'a str,
}

impl<'a> NewOrderDto<'a> {
    pub(super) fn new(order: &'a NewOrder, client_order_id: &'a str) -> Self {
        NewOrderDto {
            symbol: &order.symbol,
            qty: order.quantity,
            side: match order.side {
                OrderSide::Buy => "buy",
                OrderSide::Sell => "sell",
            },
            order_type: match order.order_type {
                OrderType::Market => "market",
                OrderType::Limit => "limit",
                OrderType::Stop => "stop",
                OrderType::StopLimit => "stop_limit",
            },
            time_in_force: time_in_force(order.time_in_force),
            limit_price: order.limit_price,
            stop_price: order.stop_price,
            client_order_id,
        }
    }
}

/// The body of `PATCH /v2/orders/{id}`: what changes, and the client order id the
/// replacement gets (derived from the key, so a resend is refused as a duplicate).
#[derive(Serialize)]
pub(super) struct ReplaceOrderDto<'a> {
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    qty: Option<Decimal>,
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
    time_in_force: Option<&'static str>,
    client_order_id: &'a str,
}

impl<'a> ReplaceOrderDto<'a> {
    pub(super) fn new(r: &OrderReplacement, client_order_id: &'a str) -> Self {
        ReplaceOrderDto {
            qty: r.quantity,
            limit_price: r.limit_price,
            stop_price: r.stop_price,
            time_in_force: r.time_in_force.map(time_in_force),
            client_order_id,
        }
    }
}

/// One element of `DELETE /v2/orders`' 207 answer: an order and the status its
/// cancel got (200, or 500 when it could not be canceled).
#[derive(Deserialize)]
pub(super) struct CancelStatusDto {
    pub(super) id: String,
    pub(super) status: u16,
}

/// `GET /v2/positions/{symbol}`: only the signed quantity matters to a close.
#[derive(Deserialize)]
pub(super) struct HeldDto {
    #[serde(with = "rust_decimal::serde::str")]
    qty: Decimal,
    #[serde(default)]
    side: Option<String>,
}

impl HeldDto {
    /// Negative when short, whether or not Alpaca signs `qty`.
    pub(super) fn signed(&self) -> Decimal {
        if self.side.as_deref() == Some("short") && self.qty > Decimal::ZERO {
            -self.qty
        } else {
            self.qty
        }
    }
}

fn time_in_force(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Day => "day",
        TimeInForce::Gtc => "gtc",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
        TimeInForce::Opg => "opg",
        TimeInForce::Cls => "cls",
    }
}

/// `{"code": 40010001, "message": "..."}`; the code may be missing.
#[derive(Deserialize)]
pub(super) struct ErrorDto {
    #[serde(default)]
    pub(super) code: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

/// One day of `GET /v2/calendar`: `open`/`close` are `HH:MM`, New York time.
#[derive(Deserialize)]
pub(super) struct CalendarDayDto {
    pub(super) date: chrono::NaiveDate,
    pub(super) open: String,
    pub(super) close: String,
}
