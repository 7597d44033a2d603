//! `POST /v2/orders` and `PATCH /v2/orders/{id}` in the Alpaca dialect:
//! `client_order_id` is unique per account, and a second order with it is refused with
//! 422, never replayed.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::idempotency::{Claim, StoredResponse};
use crate::pipeline::{Caller, DeferredLatency};
use crate::state::{lock, now, AppState};
use crate::submit::deferred;

/// Alpaca's limit on `client_order_id`.
const MAX_CLIENT_ORDER_ID: usize = 48;

/// Alpaca fields this paper broker accepts and ignores at their default values.
const IGNORED: &[&str] = &["extended_hours", "order_class"];

/// Alpaca's body in the v1 shape `order_input` reads, so both dialects validate an
/// order by the same rules (and name the same fields in their errors).
fn to_v1(obj: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
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
    Ok(v1)
}

pub(super) async fn create_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    latency: Option<Extension<DeferredLatency>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let obj = object(&body)?;
    let client_order_id = client_order_id(&obj)?;
    let mut v1 = to_v1(&obj)?;
    if let Some(Value::String(symbol)) = v1.get("symbol") {
        // Alpaca takes an asset id wherever it takes a symbol.
        if let Some(found) = super::reads::symbol_of(&app, symbol) {
            v1.insert("symbol".into(), Value::String(found));
        }
    }
    let v1 = serde_json::to_vec(&Value::Object(v1)).expect("JSON serializes");
    let (request, _) = crate::order_input::parse(&v1)?;
    unique_client_order_id(&app, acct, client_order_id, deferred(latency), |key| {
        let mut engine = lock(&app.engine);
        let id = engine.submit(acct, request, Some(key), now())?;
        Ok(render(&engine, acct, id))
    })
    .await
}

/// `PATCH /v2/orders/{id}`: the new order, with its own id and `client_order_id` (the
/// one given, which must be unique like a submit's, or one made up); the old order is
/// `replaced`. Alpaca replaces asynchronously (`pending_replace` first); here the
/// replace is done when the answer is sent.
pub(super) async fn replace_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    latency: Option<Extension<DeferredLatency>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("order"))?;
    let obj = object(&body)?;
    let client_order_id = client_order_id(&obj)?;
    let mut v1 = Map::new();
    for (key, value) in &obj {
        let value = match value {
            Value::Number(n) => Value::String(n.to_string()),
            other => other.clone(),
        };
        match key.as_str() {
            "qty" => {
                v1.insert("quantity".into(), value);
            }
            "limit_price" | "stop_price" | "time_in_force" => {
                v1.insert(key.clone(), value);
            }
            "client_order_id" => {}
            "trail" => {
                return Err(ApiError::unprocessable(
                    "unsupported",
                    Some(key),
                    "trailing stops are not supported by this paper broker",
                ))
            }
            _ => {
                return Err(ApiError::unprocessable(
                    "invalid_request",
                    Some(key),
                    format!("{key} cannot be replaced"),
                ))
            }
        }
    }
    let v1 = serde_json::to_vec(&Value::Object(v1)).expect("JSON serializes");
    let (changes, _) = crate::order_input::parse_replacement(&v1)?;
    unique_client_order_id(&app, acct, client_order_id, deferred(latency), |key| {
        let mut engine = lock(&app.engine);
        let new_id = engine.replace(acct, id, changes, Some(key), now())?;
        Ok(render(&engine, acct, new_id))
    })
    .await
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", None, format!("invalid body: {e}")))?;
    match value {
        Value::Object(obj) => Ok(obj),
        _ => Err(ApiError::bad_request(
            "invalid_json",
            None,
            "body must be an object",
        )),
    }
}

fn client_order_id(obj: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match obj.get("client_order_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_CLIENT_ORDER_ID => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(ApiError::unprocessable(
            "invalid_client_order_id",
            Some("client_order_id"),
            format!("client_order_id must be 1 to {MAX_CLIENT_ORDER_ID} characters"),
        )),
    }
}

/// The order as Alpaca shows it.
fn render(engine: &crate::engine::Engine, acct: usize, id: uuid::Uuid) -> Vec<u8> {
    let account = &engine.accounts[acct];
    let order = &account.orders[&account.by_id[&id]];
    serde_json::to_vec(&super::wire::OrderJson::new(order, &engine.market))
        .expect("order serializes")
}

/// Creates an order under `client_order_id`, which is unique per account: a second
/// order with it is refused (422), never replayed. An order the engine refuses
/// leaves the id free, as at Alpaca.
async fn unique_client_order_id(
    app: &AppState,
    acct: usize,
    client_order_id: Option<String>,
    latency: std::time::Duration,
    create: impl FnOnce(String) -> Result<Vec<u8>, ApiError>,
) -> Result<Response, ApiError> {
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
    let created = create(key.clone());
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
            store.release(acct, &key, token);
            Err(e)
        }
    }
}
