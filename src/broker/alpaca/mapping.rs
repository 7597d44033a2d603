//! Alpaca's words onto our domain enums, and the instrument facts Alpaca does not
//! send (tick, lot, trading hours), derived by its published rules.
//!
//! Every mapping is total: Alpaca adds statuses and order types over time, and an
//! unknown word must become a safe domain value rather than fail a decode.

use rust_decimal::Decimal;

use crate::domain::{AccountStatus, OrderSide, OrderStatus, OrderType, TimeInForce, TradingHours};

/// Equities trade in whole cents at or above $1 (SEC Rule 612)...
const PENNY: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// ...and in hundredths of a cent below $1.
const SUB_PENNY: Decimal = Decimal::from_parts(1, 0, 0, false, 4);
/// Alpaca's fractional shares go to 9 decimal places.
const FRACTIONAL_LOT: Decimal = Decimal::from_parts(1, 0, 0, false, 9);

pub(super) fn account_status(status: &str, blocked: bool) -> AccountStatus {
    match status.to_ascii_uppercase().as_str() {
        "ACCOUNT_CLOSED" | "CLOSED" => AccountStatus::Closed,
        "ACTIVE" if !blocked => AccountStatus::Active,
        // Onboarding, updates under review, blocked: the account exists but cannot
        // be relied on to trade.
        _ => AccountStatus::Restricted,
    }
}

/// Alpaca's 17 documented statuses onto our 8. The raw word is kept on the order
/// (`brokerStatus`), so nothing is lost for a frontend that needs the difference.
pub(super) fn order_status(status: &str, filled: Decimal, quantity: Decimal) -> OrderStatus {
    match status {
        "pending_new" | "held" | "suspended" => OrderStatus::Pending,
        // done_for_day: no more fills today but may fill on a later day;
        // pending_replace / stopped / accepted_for_bidding: still live.
        "new"
        | "accepted"
        | "accepted_for_bidding"
        | "done_for_day"
        | "pending_replace"
        | "stopped" => {
            if filled > Decimal::ZERO {
                OrderStatus::PartiallyFilled
            } else {
                OrderStatus::Accepted
            }
        }
        "partially_filled" => OrderStatus::PartiallyFilled,
        "filled" => OrderStatus::Filled,
        // calculated: done for the day, settlement pending.
        "calculated" if filled >= quantity && quantity > Decimal::ZERO => OrderStatus::Filled,
        "calculated" => OrderStatus::Accepted,
        "canceled" => OrderStatus::Canceled,
        // A replaced order is over: its successor is a new order with its own id.
        "replaced" => OrderStatus::Canceled,
        "pending_cancel" => OrderStatus::PendingCancel,
        "expired" => OrderStatus::Expired,
        "rejected" => OrderStatus::Rejected,
        other => {
            // Not terminal, so no cache keeps it for long; the raw word is on the order.
            tracing::warn!(
                status = other,
                "unknown Alpaca order status; shown as PENDING"
            );
            OrderStatus::Pending
        }
    }
}

pub(super) fn side(side: &str) -> OrderSide {
    // Alpaca knows only buy and sell; "sell_short" appears in activities, not orders.
    if side.eq_ignore_ascii_case("buy") {
        OrderSide::Buy
    } else {
        OrderSide::Sell
    }
}

pub(super) fn order_type(kind: &str) -> OrderType {
    match kind {
        "limit" => OrderType::Limit,
        // A trailing stop is a stop whose price moves; closest of ours.
        "stop" | "trailing_stop" => OrderType::Stop,
        "stop_limit" => OrderType::StopLimit,
        _ => OrderType::Market,
    }
}

pub(super) fn time_in_force(tif: &str) -> TimeInForce {
    match tif {
        "gtc" => TimeInForce::Gtc,
        "ioc" => TimeInForce::Ioc,
        "fok" => TimeInForce::Fok,
        "opg" => TimeInForce::Opg,
        "cls" => TimeInForce::Cls,
        // Unknown words are single-session orders, the most common kind.
        _ => TimeInForce::Day,
    }
}

/// An asset's tick: `price_increment` when Alpaca sends it (crypto, and the paper
/// sim). Otherwise the equity rule needs a price, which the Trading API does not
/// carry; we take $0.01, the tick of every stock at or above $1. For a sub-dollar
/// stock this is stricter than the market ($0.0001): the gateway refuses sub-penny
/// prices there rather than advertise a $0.0001 tick for every stock and let Alpaca
/// reject sub-penny prices on the rest. `equity_tick` holds the rule for when a
/// price is known.
pub(super) fn tick(price_increment: Option<Decimal>) -> Decimal {
    price_increment
        .filter(|t| *t > Decimal::ZERO)
        .unwrap_or(PENNY)
}

/// An asset's lot: `min_trade_increment` when sent; otherwise a fractionable asset
/// trades in 1e-9 shares, any other in whole shares.
pub(super) fn lot(min_trade_increment: Option<Decimal>, fractionable: bool) -> Decimal {
    min_trade_increment
        .filter(|l| *l > Decimal::ZERO)
        .unwrap_or(if fractionable {
            FRACTIONAL_LOT
        } else {
            Decimal::ONE
        })
}

/// An asset's session: `hours` from the calendar for equities; crypto trades
/// around the clock.
pub(super) fn trading_hours(
    asset_class: Option<&str>,
    hours: Option<&TradingHours>,
) -> Option<TradingHours> {
    if asset_class == Some("crypto") {
        Some(TradingHours {
            timezone: "UTC".into(),
            open: "00:00".into(),
            close: "24:00".into(),
        })
    } else {
        hours.cloned()
    }
}

/// The equity tick at `price`: $0.01 at or above $1, $0.0001 below.
#[allow(dead_code)] // Kept with its test: the rule `tick` documents.
pub(super) fn equity_tick(price: Decimal) -> Decimal {
    if price >= Decimal::ONE {
        PENNY
    } else {
        SUB_PENNY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_maps_and_unknown_is_not_terminal() {
        let q = Decimal::TEN;
        for s in [
            "new",
            "partially_filled",
            "filled",
            "done_for_day",
            "canceled",
            "expired",
            "replaced",
            "pending_cancel",
            "pending_replace",
            "accepted",
            "pending_new",
            "accepted_for_bidding",
            "stopped",
            "rejected",
            "suspended",
            "calculated",
            "held",
        ] {
            let _ = order_status(s, Decimal::ZERO, q);
        }
        assert!(!order_status("brand_new_state", Decimal::ZERO, q).is_terminal());
        assert_eq!(order_status("calculated", q, q), OrderStatus::Filled);
        assert_eq!(
            order_status("done_for_day", Decimal::ONE, q),
            OrderStatus::PartiallyFilled
        );
    }

    #[test]
    fn equity_tick_follows_the_one_dollar_rule() {
        assert_eq!(equity_tick(Decimal::ONE), PENNY);
        assert_eq!(equity_tick(Decimal::new(99, 2)), SUB_PENNY);
    }
}
