//! The HTTP server: routes, authentication, request ids, limits and graceful
//! shutdown around the GraphQL executor, serving what `services` built; the accept
//! loop (`listener`) with its connection cap and per-connection timeouts
//! (`connection`).

mod admin;
mod connection;
mod cors;
mod graphiql;
mod graphql_http;
mod health;
mod listener;
mod live;
mod metrics;
mod ratelimit;
mod sse;
mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::cache::{CacheStats, CacheStatsHandle};
use crate::config::Config;
use crate::metrics::Connections;
use crate::services::{Services, StartError};
use crate::trace::TraceContext;

/// What every request handler shares: the services start-up built, and the
/// HTTP layer's own settings and per-key limiter.
#[derive(Clone)]
pub(crate) struct AppState {
    services: Arc<Services>,
    graphiql: bool,
    ratelimit: Arc<ratelimit::RateLimiter>,
    body_limit: usize,
    body_read_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] StartError),
}

/// A gateway bound to its port and ready to run; tests build one on port 0.
pub struct Gateway {
    listener: TcpListener,
    router: Router,
    cache: CacheStatsHandle,
    limits: listener::Limits,
    /// The subscription transports: told at shutdown, so WebSockets close (1001)
    /// and SSE streams end instead of holding the drain until its limit.
    live: Arc<live::Live>,
    /// Keeps the embedded paper broker alive as long as the gateway.
    #[cfg(feature = "embedded-sim")]
    embedded: Option<crate::embedded::EmbeddedBroker>,
}

impl Gateway {
    pub async fn bind(config: Config) -> Result<Gateway, ServeError> {
        #[cfg_attr(not(feature = "embedded-sim"), allow(unused_mut))]
        let mut services = Services::build(&config).await?;
        let cache = services.cache.clone();
        #[cfg(feature = "embedded-sim")]
        let embedded = services.embedded.take();
        let ratelimit = Arc::new(ratelimit::RateLimiter::new(
            &config.rate_limit,
            services.redis.clone(),
        ));
        services.metrics.collect(metrics::LayerState {
            cache: services.cache.clone(),
            breakers: services
                .accounts
                .all()
                .iter()
                .map(|a| (a.id.clone(), a.breaker.clone()))
                .collect(),
            tokens: services
                .accounts
                .all()
                .iter()
                .filter_map(|a| Some((a.id.clone(), a.tokens.clone()?)))
                .collect(),
            redis: services.redis.clone(),
            ratelimit: ratelimit.clone(),
        });
        let state = AppState {
            services: Arc::new(services),
            graphiql: config.server.graphiql_on(config.listen),
            ratelimit,
            body_limit: config.server.body_limit_bytes,
            body_read_timeout: config.server.body_read_timeout,
        };
        let limits = limits(&config, state.services.metrics.connections().clone());
        let live = Arc::new(live::Live::new(&config));
        let router = router(state, live.clone(), &config);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Gateway {
            listener,
            router,
            cache,
            limits,
            live,
            #[cfg(feature = "embedded-sim")]
            embedded,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The cache and throttle counters now (hits, misses, broker calls by route...).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.snapshot()
    }

    /// A reader of the same counters that outlives `run` taking the gateway.
    pub fn cache_stats_handle(&self) -> CacheStatsHandle {
        self.cache.clone()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (for
    /// at most `server.request_timeout_ms`). Accept errors are logged and retried,
    /// not returned: a listener out of file descriptors recovers when some close.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        tracing::info!(
            addr = %self.local_addr(),
            max_connections = self.limits.max_connections,
            "brokergraph listening; GraphQL at /graphql"
        );
        let live = self.live;
        let shutdown = async move {
            shutdown.await;
            live.shut_down();
        };
        listener::serve(self.listener, self.router, self.limits, shutdown).await;
        #[cfg(feature = "embedded-sim")]
        if let Some(sim) = self.embedded {
            sim.shutdown().await;
        }
        Ok(())
    }
}

/// The connection limits of `config`, `server.max_connections` derived from the
/// file limit when unset (`run` logs it: a cap nobody set is one nobody knows).
fn limits(config: &Config, connections: Arc<Connections>) -> listener::Limits {
    let file_limit = listener::file_limit();
    let max_connections = config
        .server
        .max_connections
        .unwrap_or_else(|| listener::default_max_connections(file_limit));
    let headroom = max_connections.saturating_add(listener::OVERFLOW_SLOTS) as u64;
    if let Some(files) = file_limit.filter(|files| headroom > *files) {
        tracing::warn!(
            max_connections,
            file_limit = files,
            "server.max_connections is above the file limit (ulimit -n): accepts will fail \
             for lack of descriptors before the cap refuses anything"
        );
    }
    connections.set_max(max_connections);
    listener::Limits {
        timeouts: connection::Timeouts {
            header: config.server.header_read_timeout,
            keep_alive: config.server.keep_alive_timeout,
        },
        max_connections,
        drain: config.server.request_timeout,
        connections,
    }
}

/// Binds and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    Gateway::bind(config).await?.run(shutdown_signal()).await
}

fn router(state: AppState, live: Arc<live::Live>, config: &Config) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            request_id = %id,
            trace_id = tracing::field::Empty,
        );
        // Before the span is entered: see `telemetry::adopt_parent`.
        if let Some(incoming) = incoming_trace(req.headers()) {
            crate::telemetry::adopt_parent(&span, incoming);
        }
        span
    });
    // The subscription transports: WebSocket upgrades of the GET, SSE POSTs;
    // `ws` and `sse` hand everything else to `graphql_http`.
    let graphql = get(ws::get_graphql)
        .post(sse::post_graphql)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::body_limit,
        ))
        .layer::<_, std::convert::Infallible>(axum::middleware::from_fn_with_state(
            state.clone(),
            graphql_http::observe,
        ))
        .layer(compression());
    let mut routes = Router::new()
        .route("/graphql", graphql)
        .route("/metrics", get(metrics::metrics))
        .route("/graphiql/{hash}/{name}", graphiql::assets())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if let Some(admin) = admin::routes(&state, config.admin.token.as_ref()) {
        routes = routes.merge(admin);
    }
    let router = routes
        .with_state(state)
        .layer(axum::Extension(live))
        .layer(DefaultBodyLimit::max(config.server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            config.server.request_timeout,
        ))
        .layer(axum::middleware::from_fn(trace_context))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    match cors::layer(&config.server.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Inside the request's span: the client's `traceparent` (or a new trace) becomes
/// the request's trace context (`crate::trace`), named in the span as `trace_id`;
/// with OTLP export, the exported spans join the client's trace.
async fn trace_context(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let span = tracing::Span::current();
    let context = crate::telemetry::span_trace(&span).unwrap_or_else(|| {
        incoming_trace(request.headers()).map_or_else(TraceContext::start, |c| c.child())
    });
    span.record("trace_id", context.trace_id());
    context.scope(next.run(request)).await
}

fn incoming_trace(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
}

/// Answers of `/graphql` compressed in what the client accepts (zstd, br, gzip),
/// above a size where it pays; never an event stream, whose events must leave
/// as they happen (WebSocket upgrades have no body to compress).
fn compression() -> CompressionLayer<impl Predicate> {
    /// Below this, headers and CPU cost more than the bytes saved.
    const MIN_BYTES: u16 = 1024;
    CompressionLayer::new().compress_when(SizeAbove::new(MIN_BYTES).and(NotForContentType::SSE))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
