//! `POST /v2/orders` in the Alpaca dialect: `client_order_id` is unique per account,
//! and a second order with it is refused with 422, never replayed.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::idempotency::{Claim, StoredResponse};
use crate::pipeline::{Caller, DeferredLatency};
use crate::state::{lock, now, AppState};

/// Alpaca's limit on `client_order_id`.
const MAX_CLIENT_ORDER_ID: usize = 48;

/// Alpaca fields this paper broker accepts and ignores at their default values.
const IGNORED: &[&str] = &["extended_hours", "order_class"];

/// Alpaca's body in the v1 shape `order_input` reads, so both dialects validate an
/// order by the same rules (and name the same fields in their errors).
fn to_v1(obj: &Map<String, Value>) -> Result<Value, ApiError> {
    let mut v1 = Map::new();
    for (key, value) in obj {
        let value = match value {
            // Alpaca takes numbers as JSON numbers or strings.
            Value::Number(n) => Value::String(n.to_string()),
            other => other.clone(),
        };
        match key.as_str() {
            "qty" => {
                v1.insert("quantity".into(), value);
            }
            "client_order_id" => {}
            "notional" | "trail_price" | "trail_percent" | "take_profit" | "stop_loss" => {
                return Err(ApiError::unprocessable(
                    "unsupported",
                    Some(key),
                    format!("{key} is not supported by this paper broker"),
                ))
            }
            k if IGNORED.contains(&k) => {}
            _ => {
                v1.insert(key.clone(), value);
            }
        }
    }
    Ok(Value::Object(v1))
}

pub(super) async fn create_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    latency: Option<Extension<DeferredLatency>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", None, format!("invalid body: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid_json", None, "body must be an object"))?;
    let client_order_id = match obj.get("client_order_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CLIENT_ORDER_ID => {
            Some(s.clone())
        }
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_client_order_id",
                Some("client_order_id"),
                format!("client_order_id must be 1 to {MAX_CLIENT_ORDER_ID} characters"),
            ))
        }
    };
    let v1 = serde_json::to_vec(&to_v1(obj)?).expect("JSON serializes");
    let (request, _) = crate::order_input::parse(&v1)?;
    let latency = latency
        .map(|Extension(DeferredLatency(d))| d)
        .unwrap_or_default();
    let key = match client_order_id {
        Some(key) => key,
        None => {
            // Alpaca makes one up; so does this broker, and stores nothing.
            lock(&app.stats).stats.posts_without_idempotency_key += 1;
            uuid::Uuid::new_v4().to_string()
        }
    };
    // Any body: Alpaca refuses the id itself, whatever the order.
    let claim = lock(&app.idempotency).claim(acct, &key, [0; 32], Instant::now());
    let token = match claim {
        Claim::Fresh(token) => token,
        Claim::Replay(_) | Claim::Reused | Claim::InUse => {
            lock(&app.stats).stats.duplicates_prevented += 1;
            return Err(ApiError::unprocessable(
                "duplicate_client_order_id",
                Some("client_order_id"),
                "client_order_id must be unique",
            ));
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let created = {
        let mut engine = lock(&app.engine);
        engine
            .submit(acct, request, Some(key.clone()), now())
            .map(|id| {
                let account = &engine.accounts[acct];
                let order = &account.orders[&account.by_id[&id]];
                serde_json::to_vec(&super::wire::OrderJson::new(order, &engine.market))
                    .expect("order serializes")
            })
    };
    let mut store = lock(&app.idempotency);
    match created {
        Ok(body) => {
            store.complete(
                acct,
                &key,
                token,
                StoredResponse {
                    body: body.clone().into(),
                },
            );
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        Err(e) => {
            // A refused order creates nothing, so its id stays free (as at Alpaca).
            store.release(acct, &key, token);
            Err(e)
        }
    }
}
