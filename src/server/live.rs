//! What the two subscription transports (`ws`, `sse`) share: the operations they
//! run ([`Operations`], the gateway's executor or a test schema), the open
//! connections they count (by kind, for `/metrics`, and per gateway key, for
//! `subscriptions.max_connections_per_key`), and the signal that closes them all
//! when the server shuts down.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{DocumentOperations, OperationType};
use futures::stream::{BoxStream, StreamExt};
use serde_json::json;
use tokio::sync::watch;

use super::AppState;
use crate::auth::{AuthError, Principal};
use crate::config::{Config, SubscriptionSettings};
use crate::graphql::{self, Answer, ErrorCode};

/// Runs what a transport receives: queries and mutations as over HTTP (every limit,
/// scope, code and the response cache), subscriptions as streams. Generic so that
/// the WebSocket protocol is tested against a schema with a ticking subscription.
pub(crate) trait Operations: Send + Sync + 'static {
    /// The `Authorization` value (`Bearer <key or JWT>`) to a principal.
    fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send;

    /// Whether `principal` may start one more operation now (the per-key rate
    /// limit); refused: the GraphQL errors to answer with.
    fn admit(&self, principal: &Principal) -> Result<(), serde_json::Value>;

    /// A query or mutation.
    fn execute(
        &self,
        request: async_graphql::Request,
        principal: Principal,
    ) -> impl Future<Output = Answer> + Send;

    /// A subscription: its responses until the source ends or the stream is dropped.
    fn subscribe(
        &self,
        request: async_graphql::Request,
        principal: Principal,
    ) -> impl Future<Output = BoxStream<'static, async_graphql::Response>> + Send;
}

/// The gateway's own operations: `graphql::Executor` and the per-key rate limit.
pub(crate) struct GatewayOperations(pub(crate) AppState);

impl Operations for GatewayOperations {
    async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        self.0.services.auth.authenticate(authorization).await
    }

    fn admit(&self, principal: &Principal) -> Result<(), serde_json::Value> {
        if !self.0.services.auth.keys_configured() {
            return Ok(());
        }
        match self.0.ratelimit.take_local(&principal.key_id) {
            Ok(_) => Ok(()),
            Err(wait) => {
                self.0.services.metrics.rate_limited(&principal.key_id);
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                Err(json!([{
                    "message": format!(
                        "rate limit of gateway key `{}` exceeded; retry in {secs} s",
                        principal.key_id
                    ),
                    "extensions": {
                        "code": ErrorCode::RateLimited.as_str(),
                        "retryAfterSeconds": secs,
                    },
                }]))
            }
        }
    }

    /// A query or mutation over WebSocket or SSE, counted here like one over HTTP
    /// is at its edge (`graphql_http::observe`).
    async fn execute(&self, request: async_graphql::Request, principal: Principal) -> Answer {
        let Some(account) = self.0.services.account(&principal.account).await else {
            return Answer::Response(Box::new(graphql::unknown_account(&principal.account)));
        };
        let started = std::time::Instant::now();
        let answered = account.executor.execute(request, principal).await;
        let observed = &answered.observed;
        self.0.services.metrics.request(
            observed.operation.as_deref(),
            &observed.outcome,
            started.elapsed(),
        );
        answered.answer
    }

    /// Ends when the account is removed (unlinked or replaced).
    async fn subscribe(
        &self,
        request: async_graphql::Request,
        principal: Principal,
    ) -> BoxStream<'static, async_graphql::Response> {
        match self.0.services.account(&principal.account).await {
            Some(account) => account
                .executor
                .subscribe(request, principal)
                .take_until(account.removed())
                .boxed(),
            None => {
                let answer = graphql::unknown_account(&principal.account);
                futures::stream::once(async move { answer }).boxed()
            }
        }
    }
}

/// Whether `request` names a subscription; `false` too when it does not parse or
/// names no operation it has, so that `execute` answers those with their errors.
pub(crate) fn is_subscription(request: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let ty = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), None) => Some(op.node.ty),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    ty == Some(OperationType::Subscription)
}

/// The transports' shared state: settings, the per-key connection slots and the
/// shutdown signal. One per gateway. (Open connections by kind are counted by the
/// accept loop, which sees every upgrade and event stream: `listener`.)
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) settings: SubscriptionSettings,
    /// Origins other than the gateway's own that may open a WebSocket
    /// (`server.cors_origins`).
    pub(crate) origins: Vec<String>,
    /// The largest WebSocket message accepted (`server.body_limit_bytes`, as for
    /// a request body).
    pub(crate) max_message_bytes: usize,
    per_key: Mutex<HashMap<String, usize>>,
    shutdown: watch::Sender<bool>,
}

impl Live {
    pub(crate) fn new(config: &Config) -> Live {
        Live {
            settings: config.subscriptions.clone(),
            origins: config.server.cors_origins.clone(),
            max_message_bytes: config.server.body_limit_bytes,
            per_key: Mutex::default(),
            shutdown: watch::channel(false).0,
        }
    }

    /// One of `key_id`'s `subscriptions.max_connections_per_key` connection slots,
    /// held until the guard drops; `None` when all are taken.
    pub(crate) fn claim(self: &Arc<Self>, key_id: &str) -> Option<KeySlot> {
        let mut per_key = self.per_key.lock().unwrap_or_else(|e| e.into_inner());
        let held = per_key.entry(key_id.to_string()).or_default();
        if *held >= self.settings.max_connections_per_key {
            return None;
        }
        *held += 1;
        Some(KeySlot {
            live: self.clone(),
            key_id: key_id.to_string(),
        })
    }

    /// Closes every WebSocket (1001) and ends every SSE stream; new ones are refused.
    /// For `Gateway::run` at shutdown: upgraded sockets are not connections the
    /// HTTP server waits for, and a streaming SSE response would hold it forever.
    pub(crate) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Completes when the server shuts down.
    pub(crate) fn shutting_down(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|down| *down).await;
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// One connection slot of a gateway key.
#[derive(Debug)]
pub(crate) struct KeySlot {
    live: Arc<Live>,
    key_id: String,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut per_key = self.live.per_key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = per_key.get_mut(&self.key_id) {
            *held -= 1;
            if *held == 0 {
                per_key.remove(&self.key_id);
            }
        }
    }
}

/// Completes when `principal`'s session ends (a JWT's `exp` plus the leeway);
/// never for a gateway key. A WebSocket is closed then, an SSE stream ends.
pub(crate) fn session_end(principal: &Principal) -> impl Future<Output = ()> + Send + 'static {
    let left = principal.expires_at.map(|end| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        std::time::Duration::from_secs(end).saturating_sub(now)
    });
    async move {
        match left {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    }
}

/// Whether an `async_graphql::Response` is a refusal before execution (parse,
/// validation, limits): errors, no data, and no error at a path. Those are an
/// `error` message on a WebSocket rather than a `next`.
pub(crate) fn refused_before_execution(response: &async_graphql::Response) -> bool {
    !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// One GraphQL error in the wire shape, with its code.
pub(crate) fn coded_errors(message: &str, code: ErrorCode) -> serde_json::Value {
    json!([{ "message": message, "extensions": { "code": code.as_str() } }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str, name: Option<&str>) -> async_graphql::Request {
        let r = async_graphql::Request::new(query);
        match name {
            Some(n) => r.operation_name(n),
            None => r,
        }
    }

    #[test]
    fn finds_the_subscription_the_request_names() {
        assert!(is_subscription(&request("subscription { t }", None)));
        assert!(!is_subscription(&request("{ t }", None)));
        assert!(!is_subscription(&request("mutation { t }", None)));
        assert!(!is_subscription(&request("subscription {", None)));
        let two = "query A { t } subscription B { t }";
        assert!(is_subscription(&request(two, Some("B"))));
        assert!(!is_subscription(&request(two, Some("A"))));
        assert!(!is_subscription(&request(two, None)));
        assert!(!is_subscription(&request(two, Some("C"))));
    }

    #[test]
    fn a_key_holds_at_most_its_slots_and_gets_them_back() {
        let mut config = Config::default();
        config.subscriptions.max_connections_per_key = 2;
        let live = Arc::new(Live::new(&config));
        let a = live.claim("k").unwrap();
        let _b = live.claim("k").unwrap();
        assert!(live.claim("k").is_none());
        assert!(live.claim("other").is_some());
        drop(a);
        assert!(live.claim("k").is_some());
    }
}
