//! Error bodies in Alpaca's shape. Handlers and the pipeline build `ApiError`s (the
//! generic envelope); on the way out they become `{"code": <number>, "message"}`
//! with Alpaca's status for the case (403 for buying power, as Alpaca does).

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::error::ErrorDetails;

/// Error bodies are small; anything larger is not one of ours and is left alone.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub(crate) async fn reshape(response: Response) -> Response {
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Some(error) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error").cloned())
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let code = error["code"].as_str().unwrap_or_default();
    let message = error["message"].as_str().unwrap_or_default().to_owned();
    let (status, number, message) = alpaca_error(status, code, message);
    let mut body = json!({ "code": number, "message": message });
    if let Some(ErrorDetails(Value::Object(details))) = parts.extensions.get::<ErrorDetails>() {
        for (key, value) in details {
            body[key] = value.clone();
        }
    }
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::WWW_AUTHENTICATE);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

fn alpaca_error(status: StatusCode, code: &str, message: String) -> (StatusCode, u64, String) {
    match code {
        "unauthorized" => (status, 40110000, "request is not authorized".into()),
        "not_found" => (status, 40410000, message),
        "rate_limited" => (status, 42910000, "rate limit exceeded".into()),
        "insufficient_buying_power" => (
            StatusCode::FORBIDDEN,
            40310000,
            "insufficient buying power".into(),
        ),
        "order_not_cancelable" | "order_not_replaceable" | "sub_penny" => {
            (status, 42210000, message)
        }
        // Alpaca refuses selling more than is held (or shorting where it is off) with
        // 403, as it does buying power.
        "insufficient_position" => (StatusCode::FORBIDDEN, 40310000, message),
        "unknown_symbol" => (status, 42210000, format!("asset not found: {message}")),
        "not_tradable" => (
            status,
            42210000,
            format!("asset is not tradable: {message}"),
        ),
        "duplicate_client_order_id" => (status, 40010001, "client_order_id must be unique".into()),
        _ if status.is_server_error() => (status, 50010000, "internal server error".into()),
        _ => (status, 40010001, message),
    }
}
