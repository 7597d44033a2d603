//! `PATCH /v1/orders/{id}`: replaces an open order that has not traded, validated like a
//! submit and under the same idempotency semantics (`submit::Keyed`): a replay answers
//! the same replacement, never a second one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::json;

use crate::error::ApiError;
use crate::idempotency::fingerprint;
use crate::pipeline::{Caller, DeferredLatency};
use crate::state::{lock, now, AppState};
use crate::submit::{deferred, idempotency_key, render, Keyed};

pub(crate) async fn replace_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    latency: Option<Extension<DeferredLatency>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("order"))?;
    let key = idempotency_key(&headers)?;
    let (changes, value) = crate::order_input::parse_replacement(&body)?;
    // The order replaced is part of the request: one key cannot replace two orders.
    let print = fingerprint(&json!({ "replace": id.to_string(), "body": value }));
    let keyed = Keyed {
        app: &app,
        acct,
        key,
        fingerprint: print,
        latency: deferred(latency),
        created: StatusCode::OK,
    };
    keyed
        .run(|key| {
            let mut engine = lock(&app.engine);
            let new_id = engine.replace(acct, id, changes, key, now())?;
            Ok(render(&engine, acct, new_id))
        })
        .await
}
