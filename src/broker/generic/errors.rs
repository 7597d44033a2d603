//! The generic dialect's error answers onto `BrokerError`: its error envelope, and
//! what each status means. Transport failures, `Retry-After` and `X-RateLimit-*`
//! are read by `broker::transport`, the same for every dialect.

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::wire::ErrorEnvelopeDto;
use crate::broker::transport::{log_body, retry_after};
use crate::broker::BrokerError;
use crate::secret::Secret;

/// What a 404 means on this route: "no such object" for a lookup by id, but for a
/// list or the account it means the route itself is missing (a wrong base URL), which
/// must not look like an empty answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum On404 {
    NotFound,
    Rejected,
}

/// Maps a non-2xx answer to the error the layers above act on.
pub(super) fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    on_404: On404,
    api_key: &Secret,
) -> BrokerError {
    let code = status.as_u16();
    match code {
        401 | 403 => BrokerError::Unauthorized,
        404 if on_404 == On404::NotFound => BrokerError::NotFound,
        429 => BrokerError::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        400..=499 => rejected(code, body, api_key),
        500..=599 => BrokerError::Unavailable {
            status: Some(code),
            reason: format!("the broker answered {status}"),
        },
        // Redirects are not followed (they would carry the key to another URL), and
        // a 1xx/3xx is not something the v1 dialect ever sends.
        _ => {
            log_body("unexpected status from the broker", body, api_key);
            BrokerError::Decode(format!("unexpected status {status}"))
        }
    }
}

/// A 4xx with the broker's error envelope keeps its code and field; one without the
/// envelope (a proxy's HTML page, say) is still a rejection, with code `unknown`.
fn rejected(status: u16, body: &[u8], api_key: &Secret) -> BrokerError {
    match serde_json::from_slice::<ErrorEnvelopeDto>(body) {
        Ok(envelope) => BrokerError::Rejected {
            status,
            code: envelope.error.code,
            message: envelope.error.message,
            field: envelope.error.field.filter(|f| !f.is_empty()),
        },
        Err(_) => {
            log_body("broker error without an error envelope", body, api_key);
            BrokerError::Rejected {
                status,
                code: "unknown".to_owned(),
                message: format!("the broker rejected the request with status {status}"),
                field: None,
            }
        }
    }
}
