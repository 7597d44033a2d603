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
use crate::orders::{Order, OrderStatus, Side};
use crate::pipeline::Caller;
use crate::state::{lock, now, AppState};

type ApiResult<T> = Result<T, ApiError>;

/// Alpaca's largest `limit` on `GET /v2/orders`.
const MAX_LIMIT: usize = 500;

pub(super) fn pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| invalid(format!("malformed query string: {e}")))
}

pub(super) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
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

/// All assets in one array, as Alpaca sends them (no paging), narrowed by `status`,
/// `asset_class` and `exchange` (unknown values match nothing, as at Alpaca).
pub(super) async fn assets(
    State(app): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Vec<AssetJson>>> {
    let pairs = pairs(q)?;
    let wanted = |name: &str, value: &str| param(&pairs, name).is_none_or(|w| w == value);
    let engine = lock(&app.engine);
    let shortable = engine.rules.shorting;
    Ok(Json(
        engine
            .market
            .instruments
            .iter()
            .map(|i| AssetJson::new(i, shortable))
            .filter(|a| {
                wanted("status", a.status)
                    && wanted("asset_class", a.class)
                    && wanted("exchange", a.exchange)
            })
            .collect(),
    ))
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
pub(super) fn symbol_in(app: &AppState, symbol_or_asset_id: String) -> String {
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
    Ok(Json(AssetJson::new(inst, engine.rules.shorting)))
}

pub(super) async fn positions(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
) -> Json<Vec<PositionJson>> {
    let engine = lock(&app.engine);
    let account = &engine.accounts[acct];
    Json(
        account
            .positions
            .iter()
            .map(|(sym, p)| PositionJson::new(sym, p, account, &engine.market))
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
    let side = match param(&pairs, "side") {
        None => None,
        Some("buy") => Some(Side::Buy),
        Some("sell") => Some(Side::Sell),
        Some(other) => return Err(invalid(format!("invalid side {other:?}"))),
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
            && side.is_none_or(|side| o.side == side)
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

/// The market clock of the calendar below: open on weekdays from 09:30 to 16:00 New
/// York time, times shown in New York's offset (daylight saving time included), as
/// Alpaca shows them.
pub(super) async fn clock() -> Json<Value> {
    let t = now();
    let local = new_york(t);
    let (date, time) = (local.date_naive(), local.time());
    let open_at = chrono::NaiveTime::from_hms_opt(9, 30, 0).expect("a time");
    let close_at = chrono::NaiveTime::from_hms_opt(16, 0, 0).expect("a time");
    let in_session = is_session(date);
    let is_open = in_session && time >= open_at && time < close_at;
    let next_open = if in_session && time < open_at {
        date
    } else {
        next_session(date, 1)
    };
    let next_close = if in_session && time < close_at {
        date
    } else {
        next_session(date, 1)
    };
    Json(json!({
        "timestamp": local.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
        "is_open": is_open,
        "next_open": at_new_york(next_open, open_at),
        "next_close": at_new_york(next_close, close_at),
    }))
}

/// New York's UTC offset on `date`: daylight saving time from the second Sunday of
/// March to the first Sunday of November (the switch taken at the start of the day,
/// which no session time is near).
fn new_york_offset(date: NaiveDate) -> chrono::FixedOffset {
    let nth_sunday = |month: u32, n: u8| {
        NaiveDate::from_weekday_of_month_opt(date.year(), month, Weekday::Sun, n)
            .expect("every March and November has these Sundays")
    };
    let summer = date >= nth_sunday(3, 2) && date < nth_sunday(11, 1);
    let hours = if summer { -4 } else { -5 };
    chrono::FixedOffset::east_opt(hours * 3600).expect("a valid offset")
}

fn new_york(t: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
    let guess = t.with_timezone(&new_york_offset(t.date_naive()));
    t.with_timezone(&new_york_offset(guess.date_naive()))
}

fn is_session(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The first session day at least `skip` days after `from`.
fn next_session(from: NaiveDate, skip: u64) -> NaiveDate {
    let mut d = from.checked_add_days(Days::new(skip)).unwrap_or(from);
    while !is_session(d) {
        d = d.checked_add_days(Days::new(1)).unwrap_or(d);
    }
    d
}

fn at_new_york(date: NaiveDate, time: chrono::NaiveTime) -> String {
    let local = date.and_time(time);
    let offset = new_york_offset(date);
    local
        .and_local_timezone(offset)
        .single()
        .expect("a fixed offset is never ambiguous")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
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
