//! Per-gateway-key request rate limits: a token bucket per key id, so one tool
//! cannot spend the broker budget every other client shares. Over the limit, the
//! gateway answers 429 itself, with `Retry-After`, before any broker call.
//!
//! With replicas on Redis the limit is one limit across all of them (`shared`).
//! When Redis cannot be asked, each replica enforces its share alone: the local
//! bucket at the rate and burst divided by the replicas alive at the last
//! heartbeat (`cluster::members`), so the total stays about the configured limit.
//!
//! Anonymous callers (no keys configured: loopback-only development) are not
//! limited; a request with an unknown key passes through to be refused as
//! UNAUTHENTICATED, which costs no broker call either.

mod shared;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode, Version};
use axum::middleware::Next;
use axum::response::Response;

use super::graphql_http::{error_response, error_response_with};
use super::AppState;
use crate::cluster::members::Members;
use crate::cluster::Redis;
use crate::config::RateLimitSettings;
use crate::graphql::ErrorCode;
use crate::metrics::TimeoutKind;
use shared::SharedLimit;

#[derive(Clone, Copy, Debug)]
struct Rate {
    per_sec: f64,
    burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct RateLimiter {
    default: Option<Rate>,
    per_key: HashMap<String, Rate>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// With Redis: the limit all replicas share, and how many they are.
    shared: Option<(SharedLimit, Arc<Members>)>,
    /// Tokens left per key as the shared limit last reported them, for `/metrics`.
    reported: Mutex<HashMap<String, u32>>,
}

impl RateLimiter {
    pub(crate) fn new(settings: &RateLimitSettings, redis: Option<Arc<Redis>>) -> Self {
        let burst = f64::from(settings.burst.max(1));
        let rate = |per_minute: u32| {
            (per_minute > 0).then(|| Rate {
                per_sec: f64::from(per_minute) / 60.0,
                burst,
            })
        };
        RateLimiter {
            default: rate(settings.per_minute),
            per_key: settings
                .per_key
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), rate(*v)?)))
                .collect(),
            buckets: Mutex::new(HashMap::new()),
            shared: redis.map(|r| (SharedLimit::new(r.clone()), Members::join(r))),
            reported: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self, key_id: &str) -> Option<Rate> {
        self.per_key.get(key_id).copied().or(self.default)
    }

    /// Takes one token for `key_id`: the tokens left, or how long until one is
    /// back. From the limit shared with the other replicas when there is one and
    /// Redis answers; else from this replica's share (see the module doc).
    pub(crate) async fn take(&self, key_id: &str) -> Result<Option<u32>, Duration> {
        let Some(rate) = self.rate(key_id) else {
            return Ok(None);
        };
        if let Some((limit, _)) = &self.shared {
            match limit.take(key_id, rate.per_sec, rate.burst).await {
                Ok(taken) => {
                    let left = *taken.as_ref().unwrap_or(&0);
                    lock(&self.reported).insert(key_id.to_string(), left);
                    return taken.map(Some);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "shared rate limit unreachable; using this replica's share");
                }
            }
        }
        self.take_local(key_id)
    }

    /// This replica's share of the limit, from its own bucket: the whole limit
    /// alone, `1/live` of it with other replicas. For callers that cannot wait
    /// for Redis (a subscription transport's operations).
    pub(crate) fn take_local(&self, key_id: &str) -> Result<Option<u32>, Duration> {
        let Some(rate) = self.rate(key_id) else {
            return Ok(None);
        };
        let replicas = self.shared.as_ref().map_or(1, |(_, m)| m.live());
        let rate = Rate {
            per_sec: rate.per_sec / f64::from(replicas),
            burst: (rate.burst / f64::from(replicas)).floor().max(1.0),
        };
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(key_id.to_string()).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate.per_sec;
        bucket.tokens = (bucket.tokens + refill).min(rate.burst);
        bucket.at = now;
        lock(&self.reported).remove(key_id);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(Some(bucket.tokens as u32))
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / rate.per_sec,
            ))
        }
    }

    /// Whole tokens left per key that has made a request, for `/metrics`.
    pub(crate) fn remaining(&self) -> Vec<(String, u32)> {
        let mut out: HashMap<String, u32> = lock(&self.buckets)
            .iter()
            .map(|(k, b)| (k.clone(), b.tokens as u32))
            .collect();
        out.extend(lock(&self.reported).iter().map(|(k, n)| (k.clone(), *n)));
        let mut out: Vec<_> = out.into_iter().collect();
        out.sort();
        out
    }
}

/// Plain values, consistent between statements: a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Middleware on `/graphql`.
pub(crate) async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.services.auth.authenticate(bearer).await {
        Ok(p) if state.services.auth.keys_configured() => p,
        _ => return next.run(request).await,
    };
    match state.ratelimit.take(&principal.key_id).await {
        Ok(remaining) => {
            let mut response = next.run(request).await;
            if let Some(n) = remaining {
                response
                    .headers_mut()
                    .insert("x-ratelimit-remaining", HeaderValue::from(n));
            }
            response
        }
        Err(wait) => {
            state.services.metrics.rate_limited(&principal.key_id);
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = error_response_with(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "rate limit of gateway key `{}` exceeded; retry in {secs} s",
                    principal.key_id
                ),
                ErrorCode::RateLimited,
                serde_json::Map::from_iter([("retryAfterSeconds".into(), secs.into())]),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

/// `server.body_limit_bytes` and `server.body_read_timeout_ms` for `/graphql`.
/// `DefaultBodyLimit` only binds axum's own extractors, and async-graphql-axum reads
/// the body stream itself: without this a 10 MB body was read whole. Reading at most
/// the limit here bounds memory whatever the client claims in `Content-Length` (or
/// with none, chunked); reading it within the timeout bounds how long a body that
/// trickles in holds a connection (the connection's own timeouts stop at the
/// headers).
pub(crate) async fn body_limit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.body_limit;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body over server.body_limit_bytes ({limit} bytes)"),
            ErrorCode::BadUserInput,
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let timeout = state.body_read_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, bytes.into())).await,
        Ok(Err(_)) => too_large(),
        Err(_) => {
            let connections = state.services.metrics.connections();
            connections.timed_out(TimeoutKind::Body);
            let mut response = error_response(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "request body not received within server.body_read_timeout_ms ({} ms)",
                    timeout.as_millis()
                ),
                ErrorCode::RequestTimeout,
            );
            // The rest of the body may still be on its way: the connection cannot
            // carry another request, so say it closes (HTTP/2 has no such header:
            // the stream ends and the connection stays).
            if parts.version < Version::HTTP_2 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}
