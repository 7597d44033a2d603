//! The Alpaca routes that act on more than one order, or on a position:
//! `DELETE /v2/orders` (cancel every open order), `GET`/`DELETE
//! /v2/positions/{symbol_or_asset_id}` (read or close one position) and
//! `GET /v2/account/configurations`.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::reads::{pairs, param, symbol_in};
use super::wire::{OrderJson, PositionJson};
use crate::error::ApiError;
use crate::orders::{OrderRequest, OrderType, Side, TimeInForce};
use crate::pipeline::Caller;
use crate::state::{lock, now, AppState};

type ApiResult<T> = Result<T, ApiError>;

/// Alpaca's answer for a symbol the account holds none of.
fn no_position() -> ApiError {
    ApiError::NotFound("position")
}

/// 207 with one entry per open order: its id, the status its cancel got and the order
/// as it is after. Every open order here can be canceled, at once.
pub(super) async fn cancel_all(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
) -> Response {
    let mut engine = lock(&app.engine);
    let open: Vec<uuid::Uuid> = {
        let account = &engine.accounts[acct];
        account
            .open
            .iter()
            .map(|seq| account.orders[seq].id)
            .collect()
    };
    let mut answers = Vec::with_capacity(open.len());
    for id in open {
        let status = match engine.cancel(acct, id, now()) {
            Ok(()) => 200,
            Err(_) => 500,
        };
        let account = &engine.accounts[acct];
        let body = account
            .by_id
            .get(&id)
            .map(|seq| json!(OrderJson::new(&account.orders[seq], &engine.market)));
        answers.push(json!({ "id": id.to_string(), "status": status, "body": body }));
    }
    (StatusCode::MULTI_STATUS, Json(Value::Array(answers))).into_response()
}

pub(super) async fn position(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    Path(symbol_or_asset_id): Path<String>,
) -> ApiResult<Json<PositionJson>> {
    let symbol = symbol_in(&app, symbol_or_asset_id);
    let engine = lock(&app.engine);
    let account = &engine.accounts[acct];
    let held = account.positions.get(&symbol).ok_or_else(no_position)?;
    Ok(Json(PositionJson::new(
        &symbol,
        held,
        account,
        &engine.market,
    )))
}

/// Closes (liquidates) the position with a market order of the opposite side: all of
/// it, `qty` shares, or `percentage` of it (whole lots, rounded down). Answers the
/// order, which Alpaca places with a client order id of its own.
pub(super) async fn close_position(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    Path(symbol_or_asset_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let pairs = pairs(q)?;
    let symbol = symbol_in(&app, symbol_or_asset_id);
    let number = |name: &str| -> ApiResult<Option<Decimal>> {
        param(&pairs, name)
            .map(|v| {
                Decimal::from_str(v).map_err(|_| {
                    ApiError::unprocessable(
                        "invalid_request",
                        Some(name),
                        format!("invalid {name}"),
                    )
                })
            })
            .transpose()
    };
    let (qty, percentage) = (number("qty")?, number("percentage")?);
    let mut engine = lock(&app.engine);
    let account = &engine.accounts[acct];
    let held = account.held(&symbol);
    if held.is_zero() {
        return Err(no_position());
    }
    let lot = Decimal::from(engine.market.get(&symbol).map_or(1, |i| i.lot_size));
    let quantity = match (qty, percentage) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "invalid_request",
                None,
                "qty and percentage cannot be given together",
            ))
        }
        (Some(qty), None) => qty,
        (None, Some(pct)) if pct > Decimal::ZERO && pct <= Decimal::ONE_HUNDRED => {
            (held.abs() * pct / Decimal::ONE_HUNDRED / lot).floor() * lot
        }
        (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                "invalid_request",
                Some("percentage"),
                "percentage must be more than 0 and at most 100",
            ))
        }
        (None, None) => held.abs(),
    };
    if quantity > held.abs() {
        return Err(crate::validation::insufficient_qty(
            &symbol,
            quantity,
            held.abs(),
            held,
        ));
    }
    let request = OrderRequest {
        symbol: symbol.clone(),
        side: if held > Decimal::ZERO {
            Side::Sell
        } else {
            Side::Buy
        },
        order_type: OrderType::Market,
        quantity,
        limit_price: None,
        stop_price: None,
        time_in_force: TimeInForce::Day,
    };
    let client_order_id = uuid::Uuid::new_v4().to_string();
    let id = engine.submit(acct, request, Some(client_order_id), now())?;
    let account = &engine.accounts[acct];
    let order = &account.orders[&account.by_id[&id]];
    Ok(Json(OrderJson::new(order, &engine.market)).into_response())
}

/// The account's trading settings, read only here: what the sim's rules are.
pub(super) async fn configurations(State(app): State<Arc<AppState>>) -> Json<Value> {
    let shorting = lock(&app.engine).rules.shorting;
    Json(json!({
        "dtbp_check": "entry",
        "trade_confirm_email": "all",
        "suspend_trade": false,
        "no_shorting": !shorting,
        "fractional_trading": false,
        "max_margin_multiplier": "1",
        "pdt_check": "entry",
        "ptp_no_exception_entry": false,
    }))
}
