//! What came back over the wire — a status, headers, a body, or a transport
//! failure — read the same way for every dialect: transport errors, `Retry-After`,
//! `X-RateLimit-*`, and broker bodies logged with the credentials cut out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::broker::{BrokerError, RateLimitSnapshot};
use crate::secret::Secret;

/// How much of a broker body goes into a log line: enough to see what went wrong,
/// not so much that one bad response floods the logs.
const LOGGED_BODY_LIMIT: usize = 2048;

/// A failure before a complete response arrived. Reset, refused and half-read
/// responses all mean the same to the caller: the broker may or may not have acted.
pub(crate) fn transport_error(err: &reqwest::Error) -> BrokerError {
    tracing::warn!(error = %error_chain(err), "broker call failed before an answer");
    if err.is_timeout() {
        return BrokerError::Timeout;
    }
    let reason = if err.is_connect() {
        "could not connect to the broker"
    } else if err.is_body() || err.is_decode() {
        "the connection broke while reading the broker's answer"
    } else {
        "the connection to the broker failed"
    };
    BrokerError::Unavailable {
        status: None,
        reason: reason.to_owned(),
    }
}

/// reqwest's own message is only "error sending request"; the cause an operator
/// needs (refused, reset, DNS) is further down the source chain.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A body that is not the JSON we expect. serde's message can quote the body, so it
/// goes to the log (redacted) with the body; the error itself says only where.
pub(crate) fn decode_error(err: &serde_json::Error, body: &[u8], api_key: &Secret) -> BrokerError {
    tracing::warn!(
        error = %redact(err.to_string(), api_key),
        body = %loggable_body(body, api_key),
        "could not decode the broker's answer"
    );
    let what = match err.classify() {
        serde_json::error::Category::Data => "unexpected JSON shape",
        _ => "malformed JSON",
    };
    BrokerError::Decode(format!(
        "{what} at line {} column {}",
        err.line(),
        err.column()
    ))
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the
/// past means "now", not an error.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: SystemTime = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc)
        .into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `X-RateLimit-Limit/Remaining/Reset`, when all three are present and readable.
pub(crate) fn rate_limit(headers: &HeaderMap, now: SystemTime) -> Option<RateLimitSnapshot> {
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let limit = u32::try_from(number("x-ratelimit-limit")?).ok()?;
    let remaining = u32::try_from(number("x-ratelimit-remaining")?).ok()?;
    let reset = number("x-ratelimit-reset")?;
    Some(RateLimitSnapshot {
        limit,
        remaining,
        reset_at: UNIX_EPOCH + Duration::from_secs(reset),
        observed_at: now,
    })
}

/// Whether `fresh` should replace `kept`. Responses to concurrent requests can arrive
/// out of order; within one window the budget only shrinks, so a larger `remaining`
/// for the same window is an older answer and must not hide the newer, lower one.
pub(crate) fn supersedes(fresh: &RateLimitSnapshot, kept: Option<&RateLimitSnapshot>) -> bool {
    match kept {
        Some(kept) => {
            fresh.reset_at != kept.reset_at
                || fresh.limit != kept.limit
                || fresh.remaining <= kept.remaining
        }
        None => true,
    }
}

/// Logs a broker body at warn, with the API key cut out and the length capped. The
/// body is never put into a `BrokerError`, which may travel towards a client.
pub(crate) fn log_body(what: &str, body: &[u8], api_key: &Secret) {
    tracing::warn!(body = %loggable_body(body, api_key), "{what}");
}

fn loggable_body(body: &[u8], api_key: &Secret) -> String {
    // Redact before truncating, so a key straddling the cut cannot leak in part.
    let mut text = redact(String::from_utf8_lossy(body).into_owned(), api_key);
    if text.len() > LOGGED_BODY_LIMIT {
        let mut cut = LOGGED_BODY_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("…[truncated]");
    }
    text
}

fn redact(text: String, api_key: &Secret) -> String {
    if api_key.expose().is_empty() {
        return text;
    }
    text.replace(api_key.expose(), "[redacted]")
}

/// One HTTP round trip, read whole: what both adapters decode from.
pub(crate) struct Exchange {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

/// Sends `request`, reads the whole body, and keeps the `X-RateLimit-*` headers in
/// `kept` (newest window wins), whatever the status.
pub(crate) async fn exchange(
    request: reqwest::RequestBuilder,
    kept: &std::sync::Mutex<Option<RateLimitSnapshot>>,
) -> Result<Exchange, BrokerError> {
    // The request's trace goes on to the broker, as the parent of this call.
    let request = match crate::trace::TraceContext::current() {
        Some(trace) => request.header("traceparent", trace.child().traceparent()),
        None => request,
    };
    let response = request.send().await.map_err(|e| transport_error(&e))?;
    let received_at = Utc::now();
    let status = response.status();
    let headers = response.headers().clone();
    if let Some(fresh) = rate_limit(&headers, SystemTime::now()) {
        let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        if supersedes(&fresh, kept.as_ref()) {
            *kept = Some(fresh);
        }
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| transport_error(&e))?
        .into();
    Ok(Exchange {
        status,
        headers,
        body,
        received_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(remaining: u32, reset: u64) -> RateLimitSnapshot {
        RateLimitSnapshot {
            limit: 200,
            remaining,
            reset_at: UNIX_EPOCH + Duration::from_secs(reset),
            observed_at: SystemTime::now(),
        }
    }

    #[test]
    fn an_older_answer_in_the_same_window_does_not_raise_the_budget() {
        assert!(!supersedes(&snapshot(10, 100), Some(&snapshot(5, 100))));
        assert!(supersedes(&snapshot(4, 100), Some(&snapshot(5, 100))));
        assert!(supersedes(&snapshot(199, 160), Some(&snapshot(5, 100))));
    }

    #[test]
    fn logged_bodies_are_redacted_before_the_cut() {
        let key = Secret::new("sk-123");
        // The key starts 2 bytes before the cap: truncating first would leak "sk".
        let body = format!(
            "{}sk-123{}",
            "x".repeat(LOGGED_BODY_LIMIT - 2),
            "y".repeat(100)
        );
        let logged = loggable_body(body.as_bytes(), &key);
        assert!(!logged.contains("sk"), "{logged}");
        assert!(logged.ends_with("…[truncated]"));
    }

    #[test]
    fn logged_bodies_are_cut_on_a_char_boundary() {
        let body = format!("a{}", "é".repeat(LOGGED_BODY_LIMIT));
        let logged = loggable_body(body.as_bytes(), &Secret::new("k3y"));
        assert_eq!(logged.len(), LOGGED_BODY_LIMIT - 1 + "…[truncated]".len());
    }
}
