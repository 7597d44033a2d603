//! The order rules that need the instrument and the account: what a broker checks before
//! it accepts an order. Syntax is `order_input`'s job (400); this is semantics (422).

use rust_decimal::{Decimal, RoundingStrategy};

use crate::accounts::Account;
use crate::error::ApiError;
use crate::market::{Instrument, Market};
use crate::orders::{Order, OrderRequest, OrderType, Side, TimeInForce};

/// Market and stop orders hold back 5% over the last price: the price can move before
/// they fill, and the account must not end up with negative cash.
const MARKET_RESERVE: Decimal = Decimal::from_parts(105, 0, 0, false, 2);

/// Upper bounds for quantities and prices: far beyond any real order, and low enough that
/// quantity × price can never overflow the decimal arithmetic.
pub(crate) const MAX_QUANTITY: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
pub(crate) const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Where the brokers the dialects stand for differ, the engine follows the one served.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rules {
    /// New orders are `pending` until the next tick routes them (Alpaca answers a
    /// submit before the order reaches the market); otherwise they trade at once.
    pub async_acceptance: bool,
    /// Sells may go beyond the position into a short.
    pub shorting: bool,
    /// Prices follow the equity rule (whole cents at $1 and above, $0.0001 below)
    /// instead of each instrument's own tick, as Alpaca checks them.
    pub sub_penny_rule: bool,
}

/// What an accepted request needs to become an order.
pub(crate) struct Admitted {
    pub instrument: Instrument,
    /// Price per share held back from buying power while a buy is open.
    pub reserve_price: Decimal,
}

/// Accepts or refuses a request. `replacing` is an order the request would replace: its
/// hold on buying power and shares counts as available, since it ends if this succeeds.
pub(crate) fn admit(
    req: &OrderRequest,
    market: &Market,
    account: &Account,
    rules: &Rules,
    replacing: Option<&Order>,
) -> Result<Admitted, ApiError> {
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
    check_prices(req, &inst, rules)?;
    let price = inst.price;
    let reserve_price = match req.order_type {
        OrderType::Limit | OrderType::StopLimit => req.limit_price.unwrap_or(price),
        OrderType::Market => price * MARKET_RESERVE,
        OrderType::Stop => req.stop_price.unwrap_or(price).max(price) * MARKET_RESERVE,
    };
    let released = |side: Side| {
        replacing.filter(|o| o.side == side && o.symbol == req.symbol && o.status.is_open())
    };
    let buying_power =
        account.buying_power() + released(Side::Buy).map_or(Decimal::ZERO, Order::reservation);
    let needed = |quantity: Decimal| {
        (quantity * reserve_price).round_dp_with_strategy(2, RoundingStrategy::AwayFromZero)
    };
    let short_of = |needed: Decimal| {
        ApiError::unprocessable(
            "insufficient_buying_power",
            Some("quantity"),
            format!("order needs {needed} of buying power, {buying_power} available"),
        )
    };
    match req.side {
        Side::Buy => {
            if needed(req.quantity) > buying_power {
                return Err(short_of(needed(req.quantity)));
            }
        }
        Side::Sell => {
            let held = account.held(&req.symbol);
            let sellable = (account.sellable(&req.symbol)
                + released(Side::Sell).map_or(Decimal::ZERO, Order::remaining))
            .max(Decimal::ZERO);
            let short = req.quantity - sellable;
            if short > Decimal::ZERO && !rules.shorting {
                return Err(insufficient_qty(&req.symbol, req.quantity, sellable, held));
            }
            // A short sale is checked against buying power for the part beyond the
            // position (it is not held back while the order is open).
            if short > Decimal::ZERO && needed(short) > buying_power {
                return Err(short_of(needed(short)));
            }
        }
    }
    Ok(Admitted {
        instrument: inst,
        reserve_price,
    })
}

fn check_prices(req: &OrderRequest, inst: &Instrument, rules: &Rules) -> Result<(), ApiError> {
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
            (Some(p), true) if rules.sub_penny_rule && !(p % equity_tick(p)).is_zero() => {
                return Err(ApiError::unprocessable(
                    "sub_penny",
                    Some(field),
                    format!(
                        "invalid {field} {p}. sub-penny increment does not fulfill minimum pricing criteria"
                    ),
                ))
            }
            (Some(p), true) if !rules.sub_penny_rule && !inst.on_tick_grid(p) => {
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
    if req.time_in_force.is_auction()
        && matches!(req.order_type, OrderType::Stop | OrderType::StopLimit)
    {
        return Err(ApiError::unprocessable(
            "invalid_time_in_force",
            Some("time_in_force"),
            "opg and cls orders trade in an auction, which takes market and limit orders only",
        ));
    }
    Ok(())
}

/// The equity tick at `price` as Alpaca applies SEC Rule 612: whole cents at $1 and
/// above, hundredths of a cent below.
pub(crate) fn equity_tick(price: Decimal) -> Decimal {
    if price >= Decimal::ONE {
        Decimal::new(1, 2)
    } else {
        Decimal::new(1, 4)
    }
}

/// Selling (or closing) more than is held and not promised to open orders, where going
/// short is not allowed: the message and details are Alpaca's, which the v1 envelope
/// shows as the message only.
pub(crate) fn insufficient_qty(
    symbol: &str,
    requested: Decimal,
    available: Decimal,
    held: Decimal,
) -> ApiError {
    ApiError::Refused {
        code: "insufficient_position",
        field: "quantity",
        message: format!(
            "insufficient qty available for order (requested: {}, available: {})",
            requested.normalize(),
            available.normalize()
        ),
        details: serde_json::json!({
            "symbol": symbol,
            "available": available.normalize().to_string(),
            "existing_qty": held.normalize().to_string(),
            "held_for_orders": (held.abs() - available).max(Decimal::ZERO).normalize().to_string(),
        }),
    }
}
