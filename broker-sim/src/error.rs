//! The one error type of the HTTP surface, mapped once onto the error envelope
//! `{"error": {"code", "message", "field"}}` of the v1 API.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The `details` of a [`ApiError::Refused`], kept beside the response for a dialect
/// that shows them (the v1 envelope does not).
#[derive(Clone, Debug)]
pub(crate) struct ErrorDetails(pub serde_json::Value);

/// Every way a request can fail. Handlers return this; nothing else builds error bodies,
/// so codes and shapes cannot drift between routes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("missing or unknown API key")]
    Unauthorized,
    /// An OAuth access token past its expiry (RFC 6750 §3.1): refresh and resend.
    #[error("the access token expired")]
    InvalidToken,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// A request the client must change before retrying (400 syntax, 422 semantics).
    #[error("{message}")]
    Invalid {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// A 422 with facts beyond the message: the v1 envelope shows the code, message
    /// and field; the Alpaca dialect adds `details` to its body, as Alpaca does for an
    /// insufficient quantity (`available`, `existing_qty`, `held_for_orders`).
    #[error("{message}")]
    Refused {
        code: &'static str,
        field: &'static str,
        message: String,
        details: serde_json::Value,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("rate limit exceeded, retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// A response chosen by the fault injector rather than by the broker logic.
    #[error("injected fault")]
    Injected {
        status: StatusCode,
        retry_after: u64,
    },
}

impl ApiError {
    /// Syntax problems: the body or query cannot be understood.
    pub(crate) fn bad_request(
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Invalid {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// Well-formed requests the broker refuses (unknown symbol, lot size, buying power...).
    pub(crate) fn unprocessable(
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Invalid { status, .. } => *status,
            ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Injected { status, .. } => *status,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidToken => "invalid_token",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Invalid { code, .. }
            | ApiError::Refused { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Injected { status, .. } => match status.as_u16() {
                429 => "rate_limited",
                502 => "bad_gateway",
                503 => "service_unavailable",
                _ => "internal_error",
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let expired = matches!(self, ApiError::InvalidToken);
        let field = match &self {
            ApiError::Invalid { field, .. } => field.clone(),
            ApiError::Refused { field, .. } => Some((*field).to_owned()),
            _ => None,
        };
        let details = match &self {
            ApiError::Refused { details, .. } => Some(ErrorDetails(details.clone())),
            _ => None,
        };
        let mut error = json!({ "code": self.code(), "message": self.to_string() });
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
        if let Some(details) = details {
            response.extensions_mut().insert(details);
        }
        let retry_after = match self {
            ApiError::RateLimited { retry_after } => Some(retry_after),
            ApiError::Injected {
                status,
                retry_after,
            } if status == StatusCode::TOO_MANY_REQUESTS => Some(retry_after),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3.1: an expired token says so, so the client refreshes.
            let challenge = match expired {
                true => "Bearer error=\"invalid_token\"",
                false => "Bearer",
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
