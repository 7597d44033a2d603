//! Liveness and readiness for orchestrators and load balancers (docs/operations.md).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::broker::BrokerError;
use crate::graphql::error::GatewayError;
use crate::resilience::BreakerState;
use crate::services::AccountServices;

/// The process is up and serving HTTP.
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready when the broker answers an account read (through the cache, once there is
/// one). Not ready says why, so an operator sees a bad key apart from an outage.
///
/// Redis down does not make a replica unready: every replica shares the one Redis,
/// so taking them out of rotation would stop the reads that still work from local
/// caches. It is reported as `"status": "degraded"` with the reason, and mutations
/// answer BROKER_UNAVAILABLE meanwhile.
///
/// With several accounts, each is reported under `accounts`; the gateway is ready
/// while any account is (one account's broker down or logged out must not take
/// the others' traffic out of rotation), `"degraded"` when some are not.
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let accounts = state.services.accounts.all();
    let (code, mut body) = match accounts.as_slice() {
        [only] => broker_readiness(only).await,
        accounts => {
            let checks = accounts.iter().map(|a| broker_readiness(a));
            let results = futures::future::join_all(checks).await;
            let ready = results.iter().filter(|(c, _)| *c == StatusCode::OK).count();
            let (code, status) = match ready {
                0 => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
                n if n == results.len() => (StatusCode::OK, "ready"),
                _ => (StatusCode::OK, "degraded"),
            };
            let each: serde_json::Map<String, serde_json::Value> = accounts
                .iter()
                .zip(results)
                .map(|(account, (_, body))| (account.id.clone(), body))
                .collect();
            (code, json!({ "status": status, "accounts": each }))
        }
    };
    if let Some(redis) = &state.services.redis {
        let redis_status = match redis.ping().await {
            Ok(()) => json!({ "status": "up" }),
            Err(e) => {
                if code == StatusCode::OK {
                    body["status"] = json!("degraded");
                    body["reason"] = json!(
                        "redis is unreachable: reads are served, mutations are refused (BROKER_UNAVAILABLE)"
                    );
                }
                let down_for = redis.health().since.elapsed().as_secs();
                json!({ "status": "down", "reason": e.to_string(), "down_for_secs": down_for })
            }
        };
        body["redis"] = redis_status;
    }
    (code, Json(body))
}

async fn broker_readiness(account: &AccountServices) -> (StatusCode, serde_json::Value) {
    let (code, mut body) = account_readiness(account).await;
    let expires = account.tokens.as_ref().and_then(|t| t.expires_at());
    if let Some(left) = expires.and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
    {
        body["token_expires_in_secs"] = json!(left.as_secs());
    }
    (code, body)
}

async fn account_readiness(account: &AccountServices) -> (StatusCode, serde_json::Value) {
    let breaker = account.breaker.state();
    if breaker == BreakerState::Open {
        let code = GatewayError::from(BrokerError::CircuitOpen).code();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not ready", "code": code.as_str(),
                "reason": "the broker has been failing: circuit open", "breaker": breaker.as_str() }),
        );
    }
    match tokio::time::timeout(Duration::from_secs(3), account.broker.account()).await {
        Ok(Ok(_)) => (
            StatusCode::OK,
            json!({ "status": "ready", "breaker": breaker.as_str() }),
        ),
        Ok(Err(e)) => {
            let err = GatewayError::from(e);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "not ready", "code": err.code().as_str(), "reason": err.message() }),
            )
        }
        Err(_) => {
            let code = GatewayError::from(BrokerError::Timeout).code();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "not ready", "code": code.as_str(), "reason": "the broker did not answer within 3 s" }),
            )
        }
    }
}
