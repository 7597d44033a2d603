//! What every request goes through before a v1 handler, in the order a real broker's edge
//! would apply it: count it, authenticate, rate limit, then let the fault injector
//! interfere. Rate-limit headers go on every v1 response, errors included.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::faults::{CommitFailure, Outcome};
use crate::oauth::TokenCheck;
use crate::state::{lock, AppState};

/// The authenticated account, for handlers.
#[derive(Clone, Copy)]
pub(crate) struct Caller(pub usize);

/// Injected latency the order handler spends while holding its idempotency key, so that
/// a concurrent duplicate can observe the key in flight (409).
#[derive(Clone, Copy)]
pub(crate) struct DeferredLatency(pub Duration);

/// Marks a response that must not be sent: the server drops the connection instead.
#[derive(Clone, Copy)]
pub(crate) struct DropConnection;

/// Routes whose handler holds an idempotency key (or client order id) while it works:
/// injected latency is spent there, with the key held.
const KEYED_ROUTES: &[&str] = &[
    "POST /v1/orders",
    "PATCH /v1/orders/{id}",
    "POST /v2/orders",
    "PATCH /v2/orders/{id}",
];

/// Hung requests give up after this long even if the client is still waiting.
const HANG_LIMIT: Duration = Duration::from_secs(3600);

/// Records the request in stats when dropped, so requests whose client went away (or that
/// hang until shutdown) are counted too.
struct Tally {
    app: Arc<AppState>,
    route: String,
    status: Option<String>,
    recorded: bool,
}

impl Tally {
    /// Records right away, for requests that may never finish (hangs): a test must be
    /// able to see them while they are held.
    fn record_now(&mut self, status: &str) {
        lock(&self.app.stats).record(&self.route, status);
        self.status = Some(status.to_owned());
        self.recorded = true;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        if !self.recorded {
            let status = self.status.as_deref().unwrap_or("dropped");
            lock(&self.app.stats).record(&self.route, status);
        }
        tracing::debug!(route = %self.route, status = self.status.as_deref().unwrap_or("dropped"), "request");
    }
}

pub(crate) fn route_key(req: &Request) -> String {
    match req.extensions().get::<MatchedPath>() {
        Some(path) => format!("{} {}", req.method(), path.as_str()),
        None => format!("{} (unmatched)", req.method()),
    }
}

fn drop_connection() -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(DropConnection);
    response
}

pub(crate) async fn v1(State(app): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let route = route_key(&req);
    let mut tally = Tally {
        app: app.clone(),
        route: route.clone(),
        status: None,
        recorded: false,
    };
    let path = req.uri().path();
    let prefix = match app.config.dialect {
        crate::config::Dialect::Generic => "/v1",
        crate::config::Dialect::Alpaca => "/v2",
    };
    if !(path == prefix || path.starts_with(&format!("{prefix}/"))) {
        let response = next.run(req).await;
        tally.status = Some(response.status().as_u16().to_string());
        return response;
    }
    if let Some(traceparent) = req.headers().get("traceparent") {
        let value = String::from_utf8_lossy(traceparent.as_bytes()).into_owned();
        lock(&app.stats).stats.last_traceparent = Some(value);
    }
    let now = SystemTime::now();
    let checked = app.account_for(req.headers());
    let TokenCheck::Account(acct) = checked else {
        let error = match checked {
            TokenCheck::Expired => ApiError::InvalidToken,
            _ => ApiError::Unauthorized,
        };
        let mut response = in_dialect(&app, error.into_response()).await;
        lock(&app.limiter).peek(now).apply(response.headers_mut());
        tally.status = Some("401".into());
        return response;
    };
    let quota = lock(&app.limiter).check(acct, now);
    if !quota.allowed {
        let limited = ApiError::RateLimited {
            retry_after: quota.retry_after,
        };
        let mut response = in_dialect(&app, limited.into_response()).await;
        quota.apply(response.headers_mut());
        tally.status = Some("429".into());
        return response;
    }
    let plan = lock(&app.faults).plan(&route);
    req.extensions_mut().insert(Caller(acct));
    let handler_runs = matches!(plan.outcome, Outcome::Pass | Outcome::CommitThenFail(_));
    if !plan.latency.is_zero() {
        lock(&app.stats).fault("latency");
        if handler_runs && KEYED_ROUTES.contains(&route.as_str()) {
            req.extensions_mut().insert(DeferredLatency(plan.latency));
        } else {
            tokio::time::sleep(plan.latency).await;
        }
    }
    let response = match plan.outcome {
        Outcome::Pass => next.run(req).await,
        Outcome::Status(status, retry_after) => {
            lock(&app.stats).fault("status");
            ApiError::Injected {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                retry_after: retry_after.unwrap_or(quota.retry_after),
            }
            .into_response()
        }
        Outcome::Hang => {
            lock(&app.stats).fault("hang");
            tally.record_now("hang");
            let _ =
                tokio::time::timeout(HANG_LIMIT, crate::state::stopped(app.shutdown.clone())).await;
            return drop_connection();
        }
        Outcome::Reset => {
            lock(&app.stats).fault("reset");
            tally.status = Some("reset".into());
            return drop_connection();
        }
        Outcome::CommitThenFail(how) => {
            let committed = next.run(req).await;
            lock(&app.stats).fault("commit_then_fail");
            tracing::info!(route, status = %committed.status(), "commit_then_fail: discarding the real response");
            match how {
                CommitFailure::ServiceUnavailable => ApiError::Injected {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    retry_after: 0,
                }
                .into_response(),
                CommitFailure::Reset => {
                    tally.status = Some("reset".into());
                    return drop_connection();
                }
            }
        }
    };
    let mut response = in_dialect(&app, ensure_envelope(response)).await;
    quota.apply(response.headers_mut());
    tally.status = Some(response.status().as_u16().to_string());
    response
}

/// Error bodies are built once, in the generic envelope; the Alpaca dialect
/// rewrites them into Alpaca's `{code, message}` on the way out.
async fn in_dialect(app: &AppState, response: Response) -> Response {
    match app.config.dialect {
        crate::config::Dialect::Generic => response,
        crate::config::Dialect::Alpaca => crate::alpaca::errors::reshape(response).await,
    }
}

/// Errors produced by axum itself (405, 413 on an oversized body...) come as plain text;
/// a client of this API must only ever see the JSON envelope.
fn ensure_envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let allow = response.headers().get("allow").cloned();
    let mut wrapped = match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed.into_response(),
        other => ApiError::Invalid {
            status: other,
            code: "invalid_request",
            message: other
                .canonical_reason()
                .unwrap_or("invalid request")
                .to_lowercase(),
            field: None,
        }
        .into_response(),
    };
    if let Some(allow) = allow {
        wrapped.headers_mut().insert("allow", allow);
    }
    wrapped
}
