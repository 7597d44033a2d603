//! The control plane under `/sim/` (README.md, "Control plane"), behind its own
//! bearer token. It is not rate limited, not subject to faults and not counted in
//! stats: it observes the broker without disturbing it.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::faults::FaultProfile;
use crate::state::{bearer, lock, now, AppState};
use crate::stats::Stats;
use crate::stream::CloseAll;

pub(crate) fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/sim/stats", get(stats))
        .route(
            "/sim/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/sim/reset", post(reset))
        .route("/sim/prices", post(set_price))
        .route("/sim/tick", post(tick))
        .route("/sim/close", post(close_session))
        .route("/sim/stream/drop", post(drop_streams))
        .route("/sim/oauth/expire", post(expire_tokens))
        .route_layer(from_fn_with_state(app.clone(), authorize))
        .with_state(app)
}

/// Every access token issued so far expires now, as a broker that revokes tokens
/// early (or whose clock runs ahead) would: the next request with one is a 401.
async fn expire_tokens(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let n = lock(&app.oauth).expire_all();
    Json(serde_json::json!({ "expired": n }))
}

async fn authorize(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let expected = app.config.admin_token.as_deref();
    match (expected, bearer(req.headers())) {
        (Some(want), Some(got)) if want == got => next.run(req).await,
        _ => ApiError::Unauthorized.into_response(),
    }
}

/// serde for admin bodies, with its message in the envelope instead of axum's plain text.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", None, e.to_string()))
}

async fn stats(State(app): State<Arc<AppState>>) -> Json<Stats> {
    Json(app.stats())
}

async fn get_faults(State(app): State<Arc<AppState>>) -> Json<FaultProfile> {
    Json(lock(&app.faults).profile().clone())
}

async fn set_faults(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<FaultProfile>, ApiError> {
    let profile: FaultProfile = parse(&body)?;
    app.set_faults(profile.clone())
        .map_err(|msg| ApiError::bad_request("invalid_fault_profile", None, msg))?;
    Ok(Json(profile))
}

async fn clear_faults(State(app): State<Arc<AppState>>) -> Json<FaultProfile> {
    let _ = app.set_faults(FaultProfile::default());
    Json(FaultProfile::default())
}

async fn reset(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    app.reset();
    Json(json!({ "status": "reset" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    symbol: String,
    price: String,
}

async fn set_price(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: PriceBody = parse(&body)?;
    let price = Decimal::from_str(&body.price).map_err(|_| {
        ApiError::bad_request(
            "invalid_decimal",
            Some("price"),
            "price must be a decimal string",
        )
    })?;
    apply_price(&app, &body.symbol, price)?;
    Ok(Json(json!({ "symbol": body.symbol, "price": body.price })))
}

pub(crate) fn apply_price(app: &AppState, symbol: &str, price: Decimal) -> Result<(), ApiError> {
    lock(&app.engine).set_price(symbol, price, now())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TickBody {
    #[serde(default = "one")]
    ticks: u64,
}

fn one() -> u64 {
    1
}

async fn tick(
    State(app): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: TickBody = if body.is_empty() {
        TickBody { ticks: 1 }
    } else {
        parse(&body)?
    };
    let mut engine = lock(&app.engine);
    for _ in 0..body.ticks.min(100_000) {
        engine.step(now());
    }
    Ok(Json(json!({ "tick": engine.tick })))
}

async fn drop_streams(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let dropped = app.streams.close_all(CloseAll::Drop);
    Json(json!({ "dropped": dropped }))
}

async fn close_session(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut engine = lock(&app.engine);
    engine.close_session(now());
    Json(json!({ "session": engine.session }))
}
