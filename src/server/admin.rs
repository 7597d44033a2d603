//! The admin API: `PUT`/`DELETE /admin/accounts/{id}` and `GET /admin/accounts`,
//! with which the frontend's backend links a user's broker account (a static key
//! or OAuth tokens) and unlinks it. Mounted only when `admin.token` is set (else
//! every path is a 404), and only for `Authorization: Bearer <admin.token>` (else
//! 401 `UNAUTHENTICATED`): it hands out trading access to whole accounts.
//!
//! Answers name accounts by id and dialect only, never a credential.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::graphql_http::{bearer, error_response};
use super::AppState;
use crate::graphql::ErrorCode;
use crate::secret::Secret;
use crate::services::LinkError;

/// The routes, behind the token check; `None` when the admin API is off.
pub(crate) fn routes(state: &AppState, token: Option<&Secret>) -> Option<Router<AppState>> {
    let digest: [u8; 32] = Sha256::digest(token?.expose().trim().as_bytes()).into();
    Some(
        Router::new()
            .route("/admin/accounts", get(list))
            .route(
                "/admin/accounts/{id}",
                axum::routing::put(link).delete(unlink),
            )
            .layer(axum::middleware::from_fn_with_state(
                (state.clone(), digest),
                authorize,
            )),
    )
}

/// Compares digests, so the time taken says nothing about the token.
async fn authorize(
    State((_, digest)): State<(AppState, [u8; 32])>,
    request: Request,
    next: Next,
) -> Response {
    let presented = bearer(request.headers())
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| -> [u8; 32] { Sha256::digest(token.trim().as_bytes()).into() });
    if presented != Some(digest) {
        tracing::debug!("admin API: missing or wrong token");
        return error_response(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token; send `Authorization: Bearer <admin.token>`",
            ErrorCode::Unauthenticated,
        );
    }
    next.run(request).await
}

async fn list(State(state): State<AppState>) -> Response {
    let accounts: Vec<_> = state
        .services
        .accounts
        .list()
        .into_iter()
        .map(|(id, kind, linked)| json!({ "id": id, "dialect": kind.as_str(), "linked": linked }))
        .collect();
    Json(json!({ "accounts": accounts })).into_response()
}

async fn link(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let body: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("the body is not JSON: {e}"),
                ErrorCode::BadUserInput,
            )
        }
    };
    match state.services.accounts.link(&id, body).await {
        Ok(new) => {
            let kind = state
                .services
                .accounts
                .list()
                .into_iter()
                .find(|(i, _, _)| *i == id)
                .map(|(_, kind, _)| kind.as_str());
            let status = if new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(json!({ "id": id, "dialect": kind }))).into_response()
        }
        Err(e) => refused(e),
    }
}

async fn unlink(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.services.accounts.unlink(&id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error_response(
            StatusCode::NOT_FOUND,
            &format!("no linked account {id:?}"),
            ErrorCode::BadUserInput,
        ),
        Err(e) => refused(e),
    }
}

fn refused(e: LinkError) -> Response {
    let (status, code) = match &e {
        LinkError::BadInput(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadUserInput),
        LinkError::Configured(_) => (StatusCode::CONFLICT, ErrorCode::BadUserInput),
        LinkError::Connect(_) => (StatusCode::BAD_GATEWAY, ErrorCode::BrokerError),
        LinkError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::InternalError),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, "admin API: could not change the account");
    }
    error_response(status, &e.to_string(), code)
}
