//! The read routes of the Alpaca dialect, and cancel.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Datelike, Days, NaiveDate, SubsecRound, Utc, Weekday};
use serde_json::{json, Value};
use uuid::Uuid;

use super::wire::{asset_id, AccountJson, AssetJson, OrderJson, PositionJson};
use crate::error::ApiError;
use crate::orders::{Order, OrderStatus};
use crate::pipeline::Caller;
use crate::state::{lock, now, AppState};

type ApiResult<T> = Result<T, ApiError>;

/// Alpaca's largest `limit` on `GET /v2/orders`.
const MAX_LIMIT: usize = 500;

fn pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| invalid(format!("malformed query string: {e}")))
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_request", None, message)
}

pub(super) async fn account(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
) -> Json<AccountJson> {
    let engine = lock(&app.engine);
    Json(AccountJson::new(&engine.accounts[acct], &engine.market))
}

/// All assets in one array, as Alpaca sends them (no paging).
pub(super) async fn assets(State(app): State<Arc<AppState>>) -> Json<Vec<AssetJson>> {
    let engine = lock(&app.engine);
    Json(
        engine
            .market
            .instruments
            .iter()
            .map(AssetJson::new)
            .collect(),
    )
}

/// The symbol an asset id names, for routes that take either (Alpaca's
/// `{symbol_or_asset_id}`, and `symbol` in an order).
pub(super) fn symbol_of(app: &AppState, symbol_or_asset_id: &str) -> Option<String> {
    let id = Uuid::parse_str(symbol_or_asset_id).ok()?;
    let engine = lock(&app.engine);
    engine
        .market
        .instruments
        .iter()
        .find(|i| asset_id(&i.symbol) == id)
        .map(|i| i.symbol.clone())
}

/// A path's symbol, or the symbol of the asset id it holds.
fn symbol_in(app: &AppState, symbol_or_asset_id: String) -> String {
    symbol_of(app, &symbol_or_asset_id).unwrap_or(symbol_or_asset_id)
}

pub(super) async fn asset(
    State(app): State<Arc<AppState>>,
    Path(symbol_or_asset_id): Path<String>,
) -> ApiResult<Json<AssetJson>> {
    let symbol = symbol_in(&app, symbol_or_asset_id);
    let engine = lock(&app.engine);
    let inst = engine
        .market
        .get(&symbol)
        .ok_or(ApiError::NotFound("asset"))?;
    Ok(Json(AssetJson::new(inst)))
}

pub(super) async fn positions(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
) -> Json<Vec<PositionJson>> {
    let engine = lock(&app.engine);
    let held = &engine.accounts[acct].positions;
    Json(
        held.iter()
            .map(|(sym, p)| PositionJson::new(sym, p, &engine.market))
            .collect(),
    )
}

fn timestamp(pairs: &[(String, String)], name: &str) -> ApiResult<Option<DateTime<Utc>>> {
    param(pairs, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| invalid(format!("{name} must be an RFC 3339 timestamp")))
        })
        .transpose()
}

/// `GET /v2/orders`: newest first by submit time (microseconds, as shown), bounded
/// by `after`/`until` (both exclusive), at most `limit`; no cursor.
pub(super) async fn list_orders(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Vec<OrderJson>>> {
    let pairs = pairs(q)?;
    let open = match param(&pairs, "status").unwrap_or("open") {
        "open" => Some(true),
        "closed" => Some(false),
        "all" => None,
        other => return Err(invalid(format!("invalid status {other:?}"))),
    };
    let limit = match param(&pairs, "limit") {
        None => 50,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(invalid(format!("limit must be 1 to {MAX_LIMIT}"))),
        },
    };
    let ascending = match param(&pairs, "direction").unwrap_or("desc") {
        "desc" => false,
        "asc" => true,
        other => return Err(invalid(format!("invalid direction {other:?}"))),
    };
    let after = timestamp(&pairs, "after")?;
    let until = timestamp(&pairs, "until")?;
    let symbols: Option<Vec<String>> =
        param(&pairs, "symbols").map(|s| s.split(',').map(|s| s.trim().to_uppercase()).collect());
    let engine = lock(&app.engine);
    let shown = |o: &&Order| {
        let t = o.created_at.trunc_subsecs(6);
        open.is_none_or(|open| o.status.is_open() == open)
            && symbols.as_ref().is_none_or(|s| s.contains(&o.symbol))
            && after.is_none_or(|a| t > a)
            && until.is_none_or(|u| t < u)
    };
    let orders = engine.accounts[acct].orders.values();
    let picked: Vec<&Order> = if ascending {
        orders.filter(shown).take(limit).collect()
    } else {
        orders.rev().filter(shown).take(limit).collect()
    };
    Ok(Json(
        picked
            .into_iter()
            .map(|o| OrderJson::new(o, &engine.market))
            .collect(),
    ))
}

pub(super) async fn get_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderJson>> {
    let id = Uuid::parse_str(&id).map_err(|_| invalid("invalid order id"))?;
    let engine = lock(&app.engine);
    let account = &engine.accounts[acct];
    let seq = account.by_id.get(&id).ok_or(ApiError::NotFound("order"))?;
    Ok(Json(OrderJson::new(&account.orders[seq], &engine.market)))
}

pub(super) async fn by_client_order_id(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<OrderJson>> {
    let pairs = pairs(q)?;
    let wanted =
        param(&pairs, "client_order_id").ok_or_else(|| invalid("client_order_id is required"))?;
    let engine = lock(&app.engine);
    let order = engine.accounts[acct]
        .orders
        .values()
        .rev()
        .find(|o| o.idempotency_key.as_deref() == Some(wanted))
        .ok_or(ApiError::NotFound("order"))?;
    Ok(Json(OrderJson::new(order, &engine.market)))
}

/// 204 with no body, as Alpaca: the answer says only that the cancel was accepted.
/// An order that is already canceled or otherwise done is 422, as Alpaca.
pub(super) async fn cancel_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("order"))?;
    let mut engine = lock(&app.engine);
    let account = &engine.accounts[acct];
    let seq = *account.by_id.get(&id).ok_or(ApiError::NotFound("order"))?;
    let status = account.orders[&seq].status;
    if !status.is_open() || status == OrderStatus::PendingCancel {
        return Err(ApiError::unprocessable(
            "order_not_cancelable",
            None,
            format!(
                "order is already in \"{}\" state",
                super::wire::status(status)
            ),
        ));
    }
    engine.cancel(acct, id, now())?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn clock() -> Json<Value> {
    let t = now();
    let open = is_session(t.date_naive());
    Json(json!({
        "timestamp": t.to_rfc3339(),
        "is_open": open,
        "next_open": format!("{}T09:30:00-05:00", next_session(t.date_naive(), 1)),
        "next_close": format!("{}T16:00:00-05:00", next_session(t.date_naive(), 0)),
    }))
}

fn is_session(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn next_session(from: NaiveDate, skip: u64) -> NaiveDate {
    let mut d = from.checked_add_days(Days::new(skip)).unwrap_or(from);
    while !is_session(d) {
        d = d.checked_add_days(Days::new(1)).unwrap_or(d);
    }
    d
}

/// Every weekday, 09:30 to 16:00 New York time; no holidays.
pub(super) async fn calendar(RawQuery(q): RawQuery) -> ApiResult<Json<Vec<Value>>> {
    let pairs = pairs(q)?;
    let day = |name: &str, default: NaiveDate| -> ApiResult<NaiveDate> {
        param(&pairs, name)
            .map(|v| v.parse().map_err(|_| invalid(format!("invalid {name}"))))
            .unwrap_or(Ok(default))
    };
    let today = now().date_naive();
    let start = day("start", today)?;
    let end = day(
        "end",
        start.checked_add_days(Days::new(30)).unwrap_or(start),
    )?;
    let days = start
        .iter_days()
        .take_while(|d| *d <= end)
        .take(366)
        .filter(|d| is_session(*d))
        .map(|d| {
            json!({"date": d.to_string(), "open": "09:30", "close": "16:00",
            "session_open": "0400", "session_close": "2000", "settlement_date": d.to_string()})
        })
        .collect();
    Ok(Json(days))
}
