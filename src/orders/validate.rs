//! Pre-trade validation: everything we can check from the instrument before an order
//! leaves the gateway. A failure here sends nothing to the broker and stores
//! nothing under the idempotency key, so the client can fix the input and retry
//! with the same key.

use rust_decimal::Decimal;

use super::{UserError, UserErrorCode};
use crate::domain::{Instrument, NewOrder, OrderType, TimeInForce};

/// Checks `order` against `instrument` (`None`: the broker does not list the symbol).
/// Returns every problem at once, so a form can mark all bad fields together.
pub(crate) fn validate(order: &NewOrder, instrument: Option<&Instrument>) -> Vec<UserError> {
    let mut errors = Vec::new();
    let Some(instrument) = instrument else {
        errors.push(UserError::new(
            "symbol",
            UserErrorCode::UnknownSymbol,
            format!("`{}` is not an instrument of this broker", order.symbol),
        ));
        return errors;
    };
    if !instrument.tradable {
        errors.push(UserError::new(
            "symbol",
            UserErrorCode::NotTradable,
            format!("`{}` cannot be traded right now", order.symbol),
        ));
    }
    if order.quantity <= Decimal::ZERO {
        errors.push(UserError::new(
            "quantity",
            UserErrorCode::InvalidQuantity,
            "quantity must be greater than zero",
        ));
    } else if !is_multiple(order.quantity, instrument.lot_size) {
        errors.push(UserError::new(
            "quantity",
            UserErrorCode::LotSize,
            format!(
                "quantity {} is not a multiple of the lot size {}",
                order.quantity, instrument.lot_size
            ),
        ));
    }
    check_price(
        &mut errors,
        "limitPrice",
        "limit price",
        order.limit_price,
        order.order_type.needs_limit_price(),
        (
            UserErrorCode::MissingLimitPrice,
            UserErrorCode::UnexpectedLimitPrice,
        ),
        order.order_type,
        instrument.tick_size,
    );
    check_price(
        &mut errors,
        "stopPrice",
        "stop price",
        order.stop_price,
        order.order_type.needs_stop_price(),
        (
            UserErrorCode::MissingStopPrice,
            UserErrorCode::UnexpectedStopPrice,
        ),
        order.order_type,
        instrument.tick_size,
    );
    if let Some(reason) = time_in_force_refusal(order.order_type, order.time_in_force) {
        errors.push(UserError::new(
            "timeInForce",
            UserErrorCode::InvalidTimeInForce,
            reason,
        ));
    }
    errors
}

/// A market order never rests, so GTC means nothing for it; a stop order waits for
/// its trigger, so "fill now or cancel" (IOC/FOK) contradicts it, and so does "only
/// in the opening or closing auction" (OPG/CLS): auctions take market and limit
/// orders only, as at Alpaca and the exchanges behind it.
fn time_in_force_refusal(order_type: OrderType, tif: TimeInForce) -> Option<&'static str> {
    match (order_type, tif) {
        (OrderType::Stop | OrderType::StopLimit, TimeInForce::Opg | TimeInForce::Cls) => Some(
            "OPG and CLS orders trade in the opening or closing auction, which takes market and limit orders only",
        ),
        (OrderType::Market, TimeInForce::Gtc) => Some(
            "a market order fills at once or not at all, so it cannot be GTC; use DAY, IOC or FOK",
        ),
        (OrderType::Stop | OrderType::StopLimit, TimeInForce::Ioc | TimeInForce::Fok) => {
            Some("a stop order waits for its trigger, so it cannot be IOC or FOK; use DAY or GTC")
        }
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_price(
    errors: &mut Vec<UserError>,
    field: &str,
    name: &str,
    price: Option<Decimal>,
    needed: bool,
    (missing, unexpected): (UserErrorCode, UserErrorCode),
    order_type: OrderType,
    tick: Decimal,
) {
    match (price, needed) {
        (None, true) => errors.push(UserError::new(
            field,
            missing,
            format!("a {order_type:?} order needs a {name}"),
        )),
        (Some(_), false) => errors.push(UserError::new(
            field,
            unexpected,
            format!("a {order_type:?} order takes no {name}"),
        )),
        (Some(p), true) if p <= Decimal::ZERO => errors.push(UserError::new(
            field,
            UserErrorCode::InvalidPrice,
            format!("the {name} must be greater than zero"),
        )),
        (Some(p), true) if !is_multiple(p, tick) => errors.push(UserError::new(
            field,
            UserErrorCode::TickSize,
            format!("the {name} {p} is not on the tick grid of {tick}"),
        )),
        _ => {}
    }
}

fn is_multiple(value: Decimal, step: Decimal) -> bool {
    step <= Decimal::ZERO || (value % step).is_zero()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderSide;
    use std::str::FromStr;
    use uuid::Uuid;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn instrument() -> Instrument {
        Instrument {
            symbol: "ACME".into(),
            name: "Acme".into(),
            tradable: true,
            tick_size: d("0.05"),
            lot_size: d("10"),
            currency: "USD".into(),
            trading_hours: None,
        }
    }

    fn order(
        order_type: OrderType,
        qty: &str,
        limit: Option<&str>,
        stop: Option<&str>,
    ) -> NewOrder {
        NewOrder {
            idempotency_key: Uuid::nil(),
            symbol: "ACME".into(),
            side: OrderSide::Buy,
            order_type,
            quantity: d(qty),
            limit_price: limit.map(d),
            stop_price: stop.map(d),
            time_in_force: TimeInForce::Day,
        }
    }

    fn codes(o: &NewOrder, i: Option<&Instrument>) -> Vec<String> {
        validate(o, i)
            .into_iter()
            .map(|e| e.code.to_string())
            .collect()
    }

    #[test]
    fn each_rule_has_its_code() {
        let i = instrument();
        assert!(codes(
            &order(OrderType::Limit, "20", Some("10.05"), None),
            Some(&i)
        )
        .is_empty());
        assert_eq!(
            codes(&order(OrderType::Market, "10", None, None), None),
            ["UNKNOWN_SYMBOL"]
        );
        let closed = Instrument {
            tradable: false,
            ..instrument()
        };
        assert_eq!(
            codes(&order(OrderType::Market, "10", None, None), Some(&closed)),
            ["NOT_TRADABLE"]
        );
        assert_eq!(
            codes(&order(OrderType::Market, "0", None, None), Some(&i)),
            ["INVALID_QUANTITY"]
        );
        assert_eq!(
            codes(&order(OrderType::Market, "15", None, None), Some(&i)),
            ["LOT_SIZE"]
        );
        assert_eq!(
            codes(
                &order(OrderType::Limit, "10", Some("10.01"), None),
                Some(&i)
            ),
            ["TICK_SIZE"]
        );
        assert_eq!(
            codes(&order(OrderType::Limit, "10", Some("-1"), None), Some(&i)),
            ["INVALID_PRICE"]
        );
        assert_eq!(
            codes(&order(OrderType::Limit, "10", None, None), Some(&i)),
            ["MISSING_LIMIT_PRICE"]
        );
        assert_eq!(
            codes(&order(OrderType::Market, "10", Some("10"), None), Some(&i)),
            ["UNEXPECTED_LIMIT_PRICE"]
        );
        assert_eq!(
            codes(&order(OrderType::Stop, "10", None, None), Some(&i)),
            ["MISSING_STOP_PRICE"]
        );
        assert_eq!(
            codes(
                &order(OrderType::Limit, "10", Some("10"), Some("9")),
                Some(&i)
            ),
            ["UNEXPECTED_STOP_PRICE"]
        );
        let gtc = NewOrder {
            time_in_force: TimeInForce::Gtc,
            ..order(OrderType::Market, "10", None, None)
        };
        assert_eq!(codes(&gtc, Some(&i)), ["INVALID_TIME_IN_FORCE"]);
        let stop_ioc = NewOrder {
            time_in_force: TimeInForce::Ioc,
            ..order(OrderType::Stop, "10", None, Some("9"))
        };
        assert_eq!(codes(&stop_ioc, Some(&i)), ["INVALID_TIME_IN_FORCE"]);
        let stop_opg = NewOrder {
            time_in_force: TimeInForce::Opg,
            ..order(OrderType::Stop, "10", None, Some("9"))
        };
        assert_eq!(codes(&stop_opg, Some(&i)), ["INVALID_TIME_IN_FORCE"]);
        for tif in [TimeInForce::Opg, TimeInForce::Cls] {
            let market = NewOrder {
                time_in_force: tif,
                ..order(OrderType::Market, "10", None, None)
            };
            assert!(codes(&market, Some(&i)).is_empty(), "{tif:?}");
            let limit = NewOrder {
                time_in_force: tif,
                ..order(OrderType::Limit, "10", Some("10.05"), None)
            };
            assert!(codes(&limit, Some(&i)).is_empty(), "{tif:?}");
        }
    }

    #[test]
    fn reports_all_problems_at_once() {
        let i = instrument();
        assert_eq!(
            codes(
                &order(OrderType::StopLimit, "15", None, Some("1.01")),
                Some(&i)
            ),
            ["LOT_SIZE", "MISSING_LIMIT_PRICE", "TICK_SIZE"]
        );
    }
}
