//! The order rules that need the instrument and the account: what a broker checks before
//! it accepts an order. Syntax is `order_input`'s job (400); this is semantics (422).

use rust_decimal::{Decimal, RoundingStrategy};

use crate::accounts::Account;
use crate::error::ApiError;
use crate::market::{Instrument, Market};
use crate::orders::{OrderRequest, OrderType, Side, TimeInForce};

/// Market and stop orders hold back 5% over the last price: the price can move before
/// they fill, and the account must not end up with negative cash.
const MARKET_RESERVE: Decimal = Decimal::from_parts(105, 0, 0, false, 2);

/// Upper bounds for quantities and prices: far beyond any real order, and low enough that
/// quantity × price can never overflow the decimal arithmetic.
pub(crate) const MAX_QUANTITY: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
pub(crate) const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Accepts or refuses a request. On success returns the instrument and the price per
/// share to hold back from buying power while a buy is open.
pub(crate) fn admit(
    req: &OrderRequest,
    market: &Market,
    account: &Account,
) -> Result<(Instrument, Decimal), ApiError> {
    let inst = market.get(&req.symbol).cloned().ok_or_else(|| {
        ApiError::unprocessable(
            "unknown_symbol",
            Some("symbol"),
            format!("unknown symbol {:?}", req.symbol),
        )
    })?;
    if !inst.tradable {
        return Err(ApiError::unprocessable(
            "not_tradable",
            Some("symbol"),
            format!("{} is not tradable", inst.symbol),
        ));
    }
    if req.quantity <= Decimal::ZERO
        || !req.quantity.fract().is_zero()
        || req.quantity > MAX_QUANTITY
    {
        return Err(ApiError::unprocessable(
            "invalid_quantity",
            Some("quantity"),
            format!("quantity must be a positive whole number of shares, at most {MAX_QUANTITY}"),
        ));
    }
    if !(req.quantity % Decimal::from(inst.lot_size)).is_zero() {
        return Err(ApiError::unprocessable(
            "lot_size",
            Some("quantity"),
            format!(
                "quantity must be a multiple of the lot size {}",
                inst.lot_size
            ),
        ));
    }
    check_prices(req, &inst)?;
    let price = inst.price;
    let reserve_price = match req.order_type {
        OrderType::Limit | OrderType::StopLimit => req.limit_price.unwrap_or(price),
        OrderType::Market => price * MARKET_RESERVE,
        OrderType::Stop => req.stop_price.unwrap_or(price).max(price) * MARKET_RESERVE,
    };
    match req.side {
        Side::Buy => {
            let needed = (req.quantity * reserve_price)
                .round_dp_with_strategy(2, RoundingStrategy::AwayFromZero);
            let available = account.buying_power();
            if needed > available {
                return Err(ApiError::unprocessable(
                    "insufficient_buying_power",
                    Some("quantity"),
                    format!("order needs {needed} of buying power, {available} available"),
                ));
            }
        }
        Side::Sell => {
            let sellable = account.sellable(&req.symbol);
            if req.quantity > sellable {
                return Err(ApiError::unprocessable(
                    "insufficient_position",
                    Some("quantity"),
                    format!(
                        "only {sellable} shares of {} can be sold (short selling is not allowed)",
                        req.symbol
                    ),
                ));
            }
        }
    }
    Ok((inst, reserve_price))
}

fn check_prices(req: &OrderRequest, inst: &Instrument) -> Result<(), ApiError> {
    let (needs_limit, needs_stop) = match req.order_type {
        OrderType::Market => (false, false),
        OrderType::Limit => (true, false),
        OrderType::Stop => (false, true),
        OrderType::StopLimit => (true, true),
    };
    let kind = crate::wire::type_name(req.order_type);
    for (field, value, needed, missing, unexpected) in [
        (
            "limit_price",
            req.limit_price,
            needs_limit,
            "missing_limit_price",
            "unexpected_limit_price",
        ),
        (
            "stop_price",
            req.stop_price,
            needs_stop,
            "missing_stop_price",
            "unexpected_stop_price",
        ),
    ] {
        match (value, needed) {
            (None, true) => {
                return Err(ApiError::unprocessable(
                    missing,
                    Some(field),
                    format!("{kind} orders need {field}"),
                ))
            }
            (Some(_), false) => {
                return Err(ApiError::unprocessable(
                    unexpected,
                    Some(field),
                    format!("{kind} orders must not have {field}"),
                ))
            }
            (Some(p), true) if p <= Decimal::ZERO || p > MAX_PRICE => {
                return Err(ApiError::unprocessable(
                    "invalid_price",
                    Some(field),
                    format!("{field} must be positive and at most {MAX_PRICE}"),
                ))
            }
            (Some(p), true) if !inst.on_tick_grid(p) => {
                return Err(ApiError::unprocessable(
                    "tick_size",
                    Some(field),
                    format!(
                        "{field} must be a multiple of the tick size {}",
                        inst.tick_size
                    ),
                ))
            }
            _ => {}
        }
    }
    if matches!(req.time_in_force, TimeInForce::Ioc | TimeInForce::Fok)
        && matches!(req.order_type, OrderType::Stop | OrderType::StopLimit)
    {
        return Err(ApiError::unprocessable(
            "invalid_time_in_force",
            Some("time_in_force"),
            "ioc and fok apply to market and limit orders only",
        ));
    }
    Ok(())
}
