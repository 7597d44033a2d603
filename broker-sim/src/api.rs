//! The v1 routes of DESIGN §3 and their handlers.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use uuid::Uuid;

use crate::error::ApiError;
use crate::idempotency::{fingerprint, Claim, StoredResponse};
use crate::pagination::{self, ListKind, Start};
use crate::pipeline::{self, Caller, DeferredLatency};
use crate::state::{lock, now, AppState};
use crate::wire::{AccountJson, InstrumentJson, ListBody, OrderJson, PositionJson};

pub(crate) fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/account", get(account))
        .route("/v1/instruments", get(instruments))
        .route("/v1/instruments/{symbol}", get(instrument))
        .route("/v1/positions", get(positions))
        .route("/v1/orders", get(list_orders).post(create_order))
        .route("/v1/orders/{id}", get(get_order).delete(cancel_order))
        .route("/openapi.json", get(crate::openapi::serve))
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

fn json_bytes(status: StatusCode, body: &[u8]) -> Response {
    let mut response = (status, body.to_vec()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Releases an idempotency claim unless the request completed, so a failed or abandoned
/// request never leaves its key stuck "in flight".
struct ClaimGuard<'a> {
    app: &'a AppState,
    acct: usize,
    key: &'a str,
    token: u64,
    done: bool,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.app.idempotency).release(self.acct, self.key, self.token);
        }
    }
}

async fn create_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    latency: Option<Extension<DeferredLatency>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Some(k.to_owned()),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    Some("Idempotency-Key"),
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ))
            }
        },
    };
    let (request, value) = crate::order_input::parse(&body)?;
    let latency = latency
        .map(|Extension(DeferredLatency(d))| d)
        .unwrap_or_default();
    let Some(key) = key else {
        lock(&app.stats).stats.posts_without_idempotency_key += 1;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let body = submit(&app, acct, request, None)?;
        return Ok(json_bytes(StatusCode::CREATED, &body));
    };
    let claim = lock(&app.idempotency).claim(acct, &key, fingerprint(&value), Instant::now());
    let token = match claim {
        Claim::Fresh(token) => token,
        Claim::Replay(stored) => {
            let mut s = lock(&app.stats);
            s.stats.idempotent_replays += 1;
            s.stats.duplicates_prevented += 1;
            drop(s);
            let mut response = json_bytes(StatusCode::OK, &stored.body);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::Reused => {
            lock(&app.stats).stats.idempotency_key_reused += 1;
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                Some("Idempotency-Key"),
                "this Idempotency-Key was used with a different request body",
            ));
        }
        Claim::InUse => {
            let mut s = lock(&app.stats);
            s.stats.idempotency_conflicts += 1;
            s.stats.duplicates_prevented += 1;
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_use",
                message:
                    "a request with this Idempotency-Key is still being processed; retry shortly"
                        .into(),
            });
        }
    };
    let mut guard = ClaimGuard {
        app: &app,
        acct,
        key: &key,
        token,
        done: false,
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let body = submit(&app, acct, request, Some(key.clone()))?;
    lock(&app.idempotency).complete(acct, &key, token, StoredResponse { body: body.clone() });
    guard.done = true;
    Ok(json_bytes(StatusCode::CREATED, &body))
}

/// Creates the order and renders it, under one engine lock.
fn submit(
    app: &AppState,
    acct: usize,
    request: crate::orders::OrderRequest,
    key: Option<String>,
) -> ApiResult<Arc<[u8]>> {
    let mut engine = lock(&app.engine);
    let id = engine.submit(acct, request, key, now())?;
    let account = &engine.accounts[acct];
    let order = &account.orders[&account.by_id[&id]];
    let body =
        serde_json::to_vec(&OrderJson::new(order, &engine.market)).expect("order serializes");
    Ok(Arc::from(body))
}
