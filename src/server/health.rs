//! Liveness and readiness for orchestrators (DESIGN.md §10).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::graphql::error::GatewayError;
use crate::resilience::BreakerState;

/// The process is up and serving HTTP.
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready when the broker answers an account read (through the cache, once there is
/// one). Not ready says why, so an operator sees a bad key apart from an outage.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let breaker = state.breaker.state();
    if breaker == BreakerState::Open {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "code": "BROKER_UNAVAILABLE",
                "reason": "the broker has been failing: circuit open", "breaker": breaker.as_str() })),
        );
    }
    match tokio::time::timeout(Duration::from_secs(3), state.broker.account()).await {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "breaker": breaker.as_str() })),
        ),
        Ok(Err(e)) => {
            let err = GatewayError::from(e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "code": err.code(), "reason": err.message() })),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "not ready", "code": "BROKER_UNAVAILABLE", "reason": "the broker did not answer within 3 s" }),
            ),
        ),
    }
}
