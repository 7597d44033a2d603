//! The v1 routes (README.md, "The v1 API") and their handlers.

use std::ops::Bound;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::{Extension, Json, Router};
use uuid::Uuid;

use crate::error::ApiError;
use crate::pagination::{self, ListKind, Start};
use crate::pipeline::{self, Caller};
use crate::state::{lock, now, AppState};
use crate::wire::{AccountJson, InstrumentJson, ListBody, OrderJson, PositionJson, QuoteJson};

pub(crate) fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/account", get(account))
        .route("/v1/instruments", get(instruments))
        .route("/v1/instruments/{symbol}", get(instrument))
        .route("/v1/positions", get(positions))
        .route("/v1/quotes", get(quotes))
        .route(
            "/v1/orders",
            get(list_orders).post(crate::submit::create_order),
        )
        .route(
            "/v1/orders/{id}",
            get(get_order)
                .delete(cancel_order)
                .patch(crate::replace::replace_order),
        )
        .route("/v1/stream", get(crate::stream::v1::upgrade))
        .route("/openapi.json", get(crate::openapi::serve))
        .route(
            "/oauth/token",
            axum::routing::post(crate::oauth::token_endpoint),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(from_fn_with_state(app.clone(), pipeline::v1))
        .with_state(app)
}

type ApiResult<T> = Result<T, ApiError>;

fn query_pairs(raw: Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            None,
            format!("malformed query string: {e}"),
        )
    })
}

async fn account(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
) -> Json<AccountJson> {
    let engine = lock(&app.engine);
    Json(AccountJson::new(&engine.accounts[acct], &engine.market))
}

async fn instruments(
    State(app): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ListBody<InstrumentJson>>> {
    let page = pagination::parse(ListKind::Instruments, &query_pairs(q)?)?;
    let engine = lock(&app.engine);
    let all = &engine.market.instruments;
    let from = match &page.start {
        Start::After(sym) => all.partition_point(|i| i.symbol.as_str() <= sym.as_str()),
        _ => 0,
    };
    let (data, next_cursor) =
        pagination::take(ListKind::Instruments, &page, all[from..].iter(), |i| {
            i.symbol.clone()
        });
    let data = data.into_iter().map(InstrumentJson::new).collect();
    Ok(Json(ListBody { data, next_cursor }))
}

async fn instrument(
    State(app): State<Arc<AppState>>,
    Path(symbol): Path<String>,
) -> ApiResult<Json<InstrumentJson>> {
    let engine = lock(&app.engine);
    let inst = engine
        .market
        .get(&symbol)
        .ok_or(ApiError::NotFound("instrument"))?;
    Ok(Json(InstrumentJson::new(inst)))
}

/// `GET /v1/quotes?symbols=A,B`: the latest quote of each known symbol, in the order
/// asked. Unknown symbols are left out rather than failing the batch (a client reading a
/// page of instruments gets every quote that exists); `next_cursor` is always null.
async fn quotes(
    State(app): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ListBody<QuoteJson>>> {
    let symbols = crate::quotes::parse_symbols(&query_pairs(q)?)?;
    let (quotes, at) = crate::quotes::snapshot(&app, &symbols);
    let data = quotes
        .iter()
        .map(|(s, q)| QuoteJson::new(s, q, at))
        .collect();
    Ok(Json(ListBody {
        data,
        next_cursor: None,
    }))
}

async fn positions(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ListBody<PositionJson>>> {
    let page = pagination::parse(ListKind::Positions, &query_pairs(q)?)?;
    let engine = lock(&app.engine);
    let held = &engine.accounts[acct].positions;
    let lower = match &page.start {
        Start::After(sym) => Bound::Excluded(sym.clone()),
        _ => Bound::Unbounded,
    };
    let iter = held.range((lower, Bound::Unbounded));
    let (data, next_cursor) =
        pagination::take(ListKind::Positions, &page, iter, |(sym, _)| sym.to_string());
    let data = data
        .into_iter()
        .map(|(sym, p)| PositionJson::new(sym, p, &engine.market))
        .collect();
    Ok(Json(ListBody { data, next_cursor }))
}

async fn list_orders(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<ListBody<OrderJson>>> {
    let pairs = query_pairs(q)?;
    let page = pagination::parse(ListKind::Orders, &pairs)?;
    let param = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let open_filter = match param("status").unwrap_or("all") {
        "all" | "" => None,
        "open" => Some(true),
        "closed" => Some(false),
        other => {
            return Err(ApiError::bad_request(
                "invalid_value",
                Some("status"),
                format!("status must be one of open, closed, all, got {other:?}"),
            ))
        }
    };
    let symbol = param("symbol")
        .filter(|s| !s.is_empty())
        .map(str::to_uppercase);
    let engine = lock(&app.engine);
    let orders = &engine.accounts[acct].orders;
    let upper = match &page.start {
        Start::After(seq) => Bound::Excluded(seq.parse::<u64>().unwrap_or(0)),
        _ => Bound::Unbounded,
    };
    let iter = orders
        .range((Bound::Unbounded, upper))
        .rev()
        .map(|(_, o)| o)
        .filter(|o| open_filter.is_none_or(|open| o.status.is_open() == open))
        .filter(|o| symbol.as_deref().is_none_or(|s| o.symbol == s));
    let (data, next_cursor) =
        pagination::take(ListKind::Orders, &page, iter, |o| o.seq.to_string());
    let data = data
        .into_iter()
        .map(|o| OrderJson::new(o, &engine.market))
        .collect();
    Ok(Json(ListBody { data, next_cursor }))
}

fn order_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("order"))
}

async fn get_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderJson>> {
    let id = order_id(&id)?;
    let engine = lock(&app.engine);
    let account = &engine.accounts[acct];
    let seq = account.by_id.get(&id).ok_or(ApiError::NotFound("order"))?;
    Ok(Json(OrderJson::new(&account.orders[seq], &engine.market)))
}

async fn cancel_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderJson>> {
    let id = order_id(&id)?;
    let mut engine = lock(&app.engine);
    engine.cancel(acct, id, now())?;
    let account = &engine.accounts[acct];
    let order = &account.orders[&account.by_id[&id]];
    Ok(Json(OrderJson::new(order, &engine.market)))
}
