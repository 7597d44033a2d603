//! `POST /v1/orders`: parse, claim the idempotency key, create, store the response;
//! and the keyed request both it and `PATCH /v1/orders/{id}` (`replace`) run in.
//! Kept apart from the read routes because it is where retries, replays and
//! concurrency meet.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::error::ApiError;
use crate::idempotency::{fingerprint, Claim, StoredResponse};
use crate::orders::OrderRequest;
use crate::pipeline::{Caller, DeferredLatency};
use crate::state::{lock, now, AppState};
use crate::wire::OrderJson;

type ApiResult<T> = Result<T, ApiError>;

fn json_bytes(status: StatusCode, body: &[u8]) -> Response {
    let mut response = (status, body.to_vec()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Releases an idempotency claim unless the request completed, so a failed or abandoned
/// request never leaves its key stuck "in flight".
struct ClaimGuard<'a> {
    app: &'a AppState,
    acct: usize,
    key: &'a str,
    token: u64,
    done: bool,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.app.idempotency).release(self.acct, self.key, self.token);
        }
    }
}

pub(crate) async fn create_order(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    latency: Option<Extension<DeferredLatency>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let (request, value) = crate::order_input::parse(&body)?;
    let keyed = Keyed {
        app: &app,
        acct,
        key,
        fingerprint: fingerprint(&value),
        latency: deferred(latency),
        created: StatusCode::CREATED,
    };
    keyed.run(|key| submit(&app, acct, request, key)).await
}

/// The `Idempotency-Key` header, if sent.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Ok(Some(k.to_owned())),
            _ => Err(ApiError::bad_request(
                "invalid_idempotency_key",
                Some("Idempotency-Key"),
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )),
        },
    }
}

/// The injected latency the pipeline left for the handler to spend.
pub(crate) fn deferred(latency: Option<Extension<DeferredLatency>>) -> std::time::Duration {
    latency
        .map(|Extension(DeferredLatency(d))| d)
        .unwrap_or_default()
}

/// One request that creates something under an optional idempotency key, with Stripe's
/// semantics: the first answer is stored and replayed byte for byte (200 and
/// `Idempotent-Replayed: true`), the same key with another fingerprint is 422
/// `idempotency_key_reused`, and while the first is still running 409
/// `idempotency_key_in_use`. Shared by `POST /v1/orders` and `PATCH /v1/orders/{id}`,
/// whose keys live in one namespace per account.
pub(crate) struct Keyed<'a> {
    pub app: &'a AppState,
    pub acct: usize,
    pub key: Option<String>,
    pub fingerprint: [u8; 32],
    /// Spent while the key is held, so a concurrent duplicate can see it in flight.
    pub latency: std::time::Duration,
    /// The status of a first answer (a replay is always 200).
    pub created: StatusCode,
}

impl Keyed<'_> {
    pub(crate) async fn run(
        self,
        act: impl FnOnce(Option<String>) -> ApiResult<Arc<[u8]>>,
    ) -> ApiResult<Response> {
        let Keyed {
            app,
            acct,
            key,
            fingerprint,
            latency,
            created,
        } = self;
        let Some(key) = key else {
            lock(&app.stats).stats.posts_without_idempotency_key += 1;
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let body = act(None)?;
            return Ok(json_bytes(created, &body));
        };
        let claim = lock(&app.idempotency).claim(acct, &key, fingerprint, Instant::now());
        let token = match claim {
            Claim::Fresh(token) => token,
            Claim::Replay(stored) => {
                let mut s = lock(&app.stats);
                s.stats.idempotent_replays += 1;
                s.stats.duplicates_prevented += 1;
                drop(s);
                let mut response = json_bytes(StatusCode::OK, &stored.body);
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return Ok(response);
            }
            Claim::Reused => {
                lock(&app.stats).stats.idempotency_key_reused += 1;
                return Err(ApiError::unprocessable(
                    "idempotency_key_reused",
                    Some("Idempotency-Key"),
                    "this Idempotency-Key was used with a different request",
                ));
            }
            Claim::InUse => {
                let mut s = lock(&app.stats);
                s.stats.idempotency_conflicts += 1;
                s.stats.duplicates_prevented += 1;
                return Err(ApiError::Conflict {
                    code: "idempotency_key_in_use",
                    message:
                        "a request with this Idempotency-Key is still being processed; retry shortly"
                            .into(),
                });
            }
        };
        let mut guard = ClaimGuard {
            app,
            acct,
            key: &key,
            token,
            done: false,
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let body = act(Some(key.clone()))?;
        lock(&app.idempotency).complete(acct, &key, token, StoredResponse { body: body.clone() });
        guard.done = true;
        Ok(json_bytes(created, &body))
    }
}

/// Creates the order and renders it, under one engine lock.
fn submit(
    app: &AppState,
    acct: usize,
    request: OrderRequest,
    key: Option<String>,
) -> ApiResult<Arc<[u8]>> {
    let mut engine = lock(&app.engine);
    let id = engine.submit(acct, request, key, now())?;
    Ok(render(&engine, acct, id))
}

/// The order as the v1 API shows it.
pub(crate) fn render(engine: &crate::engine::Engine, acct: usize, id: uuid::Uuid) -> Arc<[u8]> {
    let account = &engine.accounts[acct];
    let order = &account.orders[&account.by_id[&id]];
    let body =
        serde_json::to_vec(&OrderJson::new(order, &engine.market)).expect("order serializes");
    Arc::from(body)
}
