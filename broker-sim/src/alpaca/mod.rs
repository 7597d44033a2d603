//! The Alpaca dialect: Alpaca's Trading API v2 routes and JSON over the same engine,
//! pipeline (auth, rate limit, faults, stats) and idempotency store as the v1 API.
//!
//! It exists so brokergraph's Alpaca adapter can be tested end to end over real HTTP
//! against something that fails like a broker. Its JSON is written from Alpaca's
//! documentation, separately from the gateway's structs. Differences from the real
//! Alpaca, on purpose: assets carry `price_increment` and `min_trade_increment` for
//! the synthetic market's varied ticks and lots; cancels complete at once (the 204 is
//! still all the answer says); the calendar is the same regular session every weekday;
//! the trade updates stream allows one connection per key and speaks JSON only.

mod data;
pub(crate) mod errors;
mod reads;
pub(crate) mod stream;
mod submit;
mod trading;
mod wire;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::pipeline;
use crate::state::AppState;

/// The v2 route keys, as used in stats and fault rules.
pub(crate) const ROUTES: &[&str] = &[
    "GET /v2/account",
    "GET /v2/assets",
    "GET /v2/assets/{symbol}",
    "GET /v2/positions",
    "GET /v2/positions/{symbol}",
    "DELETE /v2/positions/{symbol}",
    "POST /v2/orders",
    "GET /v2/orders",
    "DELETE /v2/orders",
    "GET /v2/orders/{id}",
    "GET /v2/orders:by_client_order_id",
    "DELETE /v2/orders/{id}",
    "PATCH /v2/orders/{id}",
    "GET /v2/clock",
    "GET /v2/calendar",
    "GET /v2/account/configurations",
    data::LATEST_QUOTES,
];

/// The account key of an Alpaca request: the key id, when the secret matches it
/// (in this sim an account's key is both its key id and its secret).
pub(crate) fn credentials(headers: &HeaderMap) -> Option<&str> {
    let id = headers.get("apca-api-key-id")?.to_str().ok()?.trim();
    let secret = headers.get("apca-api-secret-key")?.to_str().ok()?.trim();
    (!id.is_empty() && id == secret).then_some(id)
}

pub(crate) fn router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/account", get(reads::account))
        .route("/v2/assets", get(reads::assets))
        .route("/v2/assets/{symbol}", get(reads::asset))
        .route("/v2/positions", get(reads::positions))
        .route(
            "/v2/positions/{symbol}",
            get(trading::position).delete(trading::close_position),
        )
        .route(
            "/v2/orders",
            get(reads::list_orders)
                .post(submit::create_order)
                .delete(trading::cancel_all),
        )
        .route(
            "/v2/orders/{id}",
            get(reads::get_order)
                .delete(reads::cancel_order)
                .patch(submit::replace_order),
        )
        .route(
            "/v2/orders:by_client_order_id",
            get(reads::by_client_order_id),
        )
        .route("/v2/clock", get(reads::clock))
        .route("/v2/calendar", get(reads::calendar))
        .route("/v2/account/configurations", get(trading::configurations))
        .route("/v2/stocks/quotes/latest", get(data::latest_quotes))
        .route("/stream", get(stream::upgrade))
        // Alpaca's answer to a path it does not serve: 404 "endpoint not found".
        .fallback(|| async { ApiError::NotFound("endpoint") })
        .layer(from_fn_with_state(app.clone(), pipeline::v1))
        .with_state(app.clone())
        .merge(data::stream_router(app))
}
