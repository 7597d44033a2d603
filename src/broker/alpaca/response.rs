//! Alpaca's error answers onto `BrokerError`. Transport failures, `Retry-After` and
//! `X-RateLimit-*` are read exactly as for the generic dialect, with its helpers.

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::wire::ErrorDto;
use crate::broker::transport::{log_body, retry_after};
use crate::broker::BrokerError;
use crate::secret::Secret;

/// What a 404 or 422 means on this route.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// A lookup by id or symbol: 404 is "no such object".
    Lookup,
    /// A list or the account: 404 means a wrong base URL, never an empty answer.
    List,
    /// `POST /v2/orders`: a 422 may be the duplicate client id.
    Submit,
    /// `DELETE /v2/orders/{id}`: 404 is "no such order", 422 "not cancelable".
    Cancel,
    /// `PATCH /v2/orders/{id}`: 404 is "no such order", a 422 about the order's state
    /// "not replaceable" (a 422 may also be the duplicate client id).
    Replace,
}

/// Alpaca's refusal of a `client_order_id` it has seen. Alpaca has worded it with
/// and without underscores over time, so the separators are matched loosely.
pub(super) fn is_duplicate_client_id(err: &BrokerError) -> bool {
    let BrokerError::Rejected {
        status: 422,
        message,
        ..
    } = err
    else {
        return false;
    };
    let squashed: String = message
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    squashed.contains("clientorderidmustbeunique")
}

pub(super) fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    expect: Expect,
    secret: &Secret,
) -> BrokerError {
    let code = status.as_u16();
    let dto = serde_json::from_slice::<ErrorDto>(body).ok();
    let message = dto
        .as_ref()
        .and_then(|d| d.message.clone())
        .filter(|m| !m.is_empty());
    let numeric = dto.as_ref().and_then(|d| d.code.as_ref()).map(|c| match c {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    match code {
        401 => BrokerError::Unauthorized,
        // Alpaca answers 403 both for bad credentials ("forbidden") and for business
        // refusals such as buying power (code 403xxxxx with a message).
        403 if numeric.is_none() || message.as_deref() == Some("forbidden") => {
            BrokerError::Unauthorized
        }
        404 if matches!(expect, Expect::Lookup | Expect::Cancel | Expect::Replace) => {
            BrokerError::NotFound
        }
        429 => BrokerError::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        400..=499 => {
            if dto.is_none() {
                log_body("Alpaca error without its JSON body", body, secret);
            }
            let message = message
                .unwrap_or_else(|| format!("the broker rejected the request with status {status}"));
            BrokerError::Rejected {
                status: code,
                code: our_code(code, expect, &message, numeric.as_deref()),
                message,
                field: None,
            }
        }
        500..=599 => BrokerError::Unavailable {
            status: Some(code),
            reason: format!("the broker answered {status}"),
        },
        _ => {
            log_body("unexpected status from Alpaca", body, secret);
            BrokerError::Decode(format!("unexpected status {status}"))
        }
    }
}

/// Alpaca's codes are numbers shared by many messages, so the code the layers
/// above act on comes from the route and the message; otherwise `alpaca_<code>`.
fn our_code(status: u16, expect: Expect, message: &str, numeric: Option<&str>) -> String {
    let lower = message.to_ascii_lowercase();
    if expect == Expect::Cancel && status == 422 {
        return "order_not_cancelable".into();
    }
    if lower.contains("insufficient buying power") {
        return "insufficient_buying_power".into();
    }
    // "insufficient qty available for order (requested: 10, available: 5)": selling
    // more than is held, or than open orders leave (403 40310000, as buying power).
    if lower.contains("insufficient qty") {
        return "insufficient_position".into();
    }
    if lower.contains("asset") && lower.contains("not found") {
        return "unknown_symbol".into();
    }
    if lower.contains("not tradable") || lower.contains("not active") {
        return "not_tradable".into();
    }
    if lower.contains("sub-penny") || lower.contains("minimum pricing criteria") {
        return "tick_size".into();
    }
    if expect == Expect::Replace
        && status == 422
        && (lower.contains("replace") || lower.contains("not open"))
    {
        return "order_not_replaceable".into();
    }
    match numeric {
        Some(n) => format!("alpaca_{n}"),
        None => "unknown".into(),
    }
}
