//! The order that closes a position, for adapters that close with an order of their
//! own under the close's idempotency key (the generic v1 API has no close route, and
//! Alpaca's takes no client order id, so a lost answer could not be told apart from a
//! close that never happened).

use rust_decimal::Decimal;

use super::BrokerError;
use crate::domain::{NewOrder, OrderSide, OrderType, PositionClose, TimeInForce};

/// A market order of the opposite side for `close.quantity`, or the whole of `held`
/// (signed: negative is short). Closing more than is held would open the other side,
/// so it is refused as the broker refuses selling more than held.
pub(crate) fn closing_order(close: &PositionClose, held: Decimal) -> Result<NewOrder, BrokerError> {
    if held.is_zero() {
        return Err(no_position(&close.symbol));
    }
    let quantity = close.quantity.unwrap_or(held.abs());
    if quantity > held.abs() {
        return Err(BrokerError::Rejected {
            status: 422,
            code: "insufficient_position".into(),
            message: format!(
                "the position in {} is {}; a close cannot be for {quantity}",
                close.symbol,
                held.normalize()
            ),
            field: Some("quantity".into()),
        });
    }
    Ok(NewOrder {
        idempotency_key: close.idempotency_key,
        symbol: close.symbol.clone(),
        side: if held.is_sign_positive() {
            OrderSide::Sell
        } else {
            OrderSide::Buy
        },
        order_type: OrderType::Market,
        quantity,
        limit_price: None,
        stop_price: None,
        time_in_force: TimeInForce::Day,
    })
}

/// The broker's answer for a close of a symbol the account holds none of.
pub(crate) fn no_position(symbol: &str) -> BrokerError {
    BrokerError::Rejected {
        status: 404,
        code: "position_not_found".into(),
        message: format!("the account holds no position in {symbol}"),
        field: Some("symbol".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(quantity: Option<&str>) -> PositionClose {
        PositionClose {
            idempotency_key: uuid::Uuid::nil(),
            symbol: "ACME".into(),
            quantity: quantity.map(|q| q.parse().unwrap()),
        }
    }

    #[test]
    fn a_long_is_closed_by_a_sell_and_a_short_by_a_buy() {
        let long = closing_order(&close(None), Decimal::from(7)).unwrap();
        assert_eq!(
            (long.side, long.quantity),
            (OrderSide::Sell, Decimal::from(7))
        );
        let short = closing_order(&close(Some("2")), Decimal::from(-5)).unwrap();
        assert_eq!(
            (short.side, short.quantity),
            (OrderSide::Buy, Decimal::from(2))
        );
        assert_eq!(short.order_type, OrderType::Market);
    }

    #[test]
    fn nothing_held_or_more_than_held_is_refused() {
        let none = closing_order(&close(None), Decimal::ZERO).unwrap_err();
        assert!(matches!(none, BrokerError::Rejected { code, .. } if code == "position_not_found"));
        let more = closing_order(&close(Some("8")), Decimal::from(-5)).unwrap_err();
        assert!(
            matches!(more, BrokerError::Rejected { code, .. } if code == "insufficient_position")
        );
    }
}
