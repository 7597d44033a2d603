//! The order model and the rule that decides how much of an order can execute at a price.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::market::Instrument;

/// Notional one order may execute per market tick: what makes big orders fill in parts.
pub(crate) const TICK_LIQUIDITY_USD: i64 = 250_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrderType {
    Market,
    Limit,
    Stop,
    StopLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TimeInForce {
    Day,
    Gtc,
    Ioc,
    Fok,
    /// Only in the next opening auction; the unfilled rest is canceled there.
    Opg,
    /// Only in the closing auction of the session; the unfilled rest is canceled.
    Cls,
}

impl TimeInForce {
    /// Waits for one auction instead of trading whenever the price allows.
    pub(crate) fn is_auction(self) -> bool {
        matches!(self, TimeInForce::Opg | TimeInForce::Cls)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrderStatus {
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
    /// Open orders can still fill; everything else is final and may be pruned.
    pub(crate) fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::Pending
                | OrderStatus::Accepted
                | OrderStatus::PartiallyFilled
                | OrderStatus::PendingCancel
        )
    }
}

/// A validated order request, before it becomes an order.
#[derive(Clone, Debug)]
pub(crate) struct OrderRequest {
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
}

/// What a replace changes; everything absent stays as the replaced order had it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Replacement {
    pub quantity: Option<Decimal>,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: Option<TimeInForce>,
}

#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub id: Uuid,
    /// Creation sequence within the account: the "newest first" sort key and the cursor.
    pub seq: u64,
    pub idempotency_key: Option<String>,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub filled_quantity: Decimal,
    /// Sum of quantity × price over all fills, unrounded, for the average fill price.
    pub fill_notional: Decimal,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub time_in_force: TimeInForce,
    pub status: OrderStatus,
    /// A stop has been touched; from now on the order acts as market or limit.
    pub triggered: bool,
    /// Price per share held back from buying power for the unfilled part of a buy.
    pub reserve_price: Decimal,
    /// The order this one replaced.
    pub replaces: Option<Uuid>,
    /// The order that replaced this one (which is then over, `canceled`).
    pub replaced_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Order {
    pub(crate) fn remaining(&self) -> Decimal {
        self.quantity - self.filled_quantity
    }

    /// Cash held back for this order while it is open (buys only), rounded up to the cent.
    pub(crate) fn reservation(&self) -> Decimal {
        if self.side == Side::Sell || !self.status.is_open() {
            return Decimal::ZERO;
        }
        (self.remaining() * self.reserve_price)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::AwayFromZero)
    }

    pub(crate) fn average_fill_price(&self, inst: Option<&Instrument>) -> Option<Decimal> {
        if self.filled_quantity.is_zero() {
            return None;
        }
        Some(display_price(
            self.fill_notional / self.filled_quantity,
            inst,
        ))
    }

    /// Whether the order may trade at `price` now, latching stop triggers.
    pub(crate) fn marketable(&mut self, price: Decimal) -> bool {
        if let Some(stop) = self.stop_price {
            if !self.triggered {
                let touched = match self.side {
                    Side::Buy => price >= stop,
                    Side::Sell => price <= stop,
                };
                if !touched {
                    return false;
                }
                self.triggered = true;
            }
        }
        match (self.limit_price, self.side) {
            (None, _) => true,
            (Some(limit), Side::Buy) => price <= limit,
            (Some(limit), Side::Sell) => price >= limit,
        }
    }
}

/// Largest quantity (a whole number of lots) one order may trade in one tick at `price`.
pub(crate) fn tick_liquidity(inst: &Instrument, price: Decimal) -> Decimal {
    let lot = Decimal::from(inst.lot_size);
    let lots = (Decimal::from(TICK_LIQUIDITY_USD) / price / lot).floor();
    lots.max(Decimal::ONE) * lot
}

/// An average rounded to 4 places, shown at tick precision when it sits on the grid.
pub(crate) fn display_price(price: Decimal, inst: Option<&Instrument>) -> Decimal {
    let rounded = price.round_dp(4);
    match inst {
        Some(inst) if inst.on_tick_grid(rounded) => inst.scaled(rounded),
        _ => {
            let mut d = rounded.normalize();
            if d.scale() < 2 {
                d.rescale(2);
            }
            d
        }
    }
}
