//! The HTTP server: routes, authentication, request ids, limits and graceful
//! shutdown around the GraphQL schema (DESIGN.md §10).

mod adapter;
mod cors;
mod graphiql;
mod graphql_http;
mod health;
mod metered;
mod metrics;
mod ratelimit;
mod responses;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::broker::alpaca::AlpacaBrokerConfigError;
use crate::broker::http::GenericBrokerConfigError;
use crate::broker::Broker;
use crate::cache::{CacheStats, CacheStatsHandle, CacheStore, CachedBroker};
use crate::config::Config;
use crate::graphql::{self, AppSchema, PageSizes};
use crate::idempotency::{IdempotencyStore, MemoryStore, RedisStore};
use crate::orders::{OrderService, OrderSettings};
use crate::resilience::{CircuitBreaker, ResilientBroker, RetryPolicy};
use crate::secret::Secret;

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    schema: AppSchema,
    /// Also held by the schema; handlers need it to build per-request DataLoaders.
    broker: Arc<dyn Broker>,
    auth: Arc<Authenticator>,
    graphiql: bool,
    /// The broker's circuit breaker, which `/readyz` reports.
    breaker: Arc<CircuitBreaker>,
    /// The Redis replicas share, if configured; `/readyz` reports it.
    redis: Option<Arc<crate::shared::Redis>>,
    /// `broker`'s cache layer, which learns of other replicas' mutations per request.
    cached: Arc<CachedBroker>,
    /// Whole answers of read-only queries, reused while exact (issue 7's hot path).
    responses: Arc<responses::ResponseCache>,
    metrics: Arc<crate::metrics::Metrics>,
    cache: CacheStatsHandle,
    ratelimit: Arc<ratelimit::RateLimiter>,
    body_limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("could not start the embedded paper broker: {0}")]
    Embedded(std::io::Error),
    #[error(
        "no broker is configured and this build has no embedded paper broker; set --broker-url"
    )]
    NoBroker,
    #[error("broker client: {0}")]
    Broker(#[from] GenericBrokerConfigError),
    #[error("Alpaca client: {0}")]
    Alpaca(#[from] AlpacaBrokerConfigError),
    #[error("broker.ca_file: {0}")]
    CaFile(String),
    #[error("server error: {0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    AllowList(#[from] graphql::persisted::AllowListError),
    #[error(transparent)]
    Redis(#[from] crate::shared::RedisError),
}

/// A gateway bound to its port and ready to run; tests build one on port 0.
pub struct Gateway {
    listener: TcpListener,
    router: Router,
    cache: CacheStatsHandle,
    /// Keeps the embedded paper broker alive as long as the gateway.
    #[cfg(feature = "embedded-sim")]
    embedded: Option<crate::embedded::EmbeddedBroker>,
}

impl Gateway {
    pub async fn bind(config: Config) -> Result<Gateway, ServeError> {
        let endpoint = adapter::connect(&config).await?;
        let redis = crate::shared::Redis::open(&config.redis)?.map(Arc::new);
        if let Some(redis) = &redis {
            redis.check_eviction_policy().await;
        }
        #[cfg(feature = "embedded-sim")]
        let embedded = endpoint.embedded;
        let (url, api_key) = (endpoint.url, endpoint.identity);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let adapter: Arc<dyn Broker> = Arc::new(metered::MeteredBroker::new(
            endpoint.broker,
            metrics.clone(),
        ));
        let resilient = ResilientBroker::new(adapter, RetryPolicy::default());
        let breaker = resilient.breaker();
        let broker: Arc<dyn Broker> = Arc::new(resilient);
        let identity = account_identity(&url, &api_key);
        let cache = CacheStore::new(&config.cache);
        let mut cached = CachedBroker::new(
            broker,
            &cache_account(&identity),
            cache.clone(),
            &config.throttle,
        );
        if let Some(redis) = &redis {
            cached = cached.with_replicas(redis.clone());
        }
        let cached = Arc::new(cached);
        let broker: Arc<dyn Broker> = cached.clone();
        let pages = PageSizes {
            default: config.graphql.default_page_size,
            max: config.graphql.max_page_size,
        };
        let ttl = config.idempotency.ttl;
        // With replicas, a retry may land on any of them: the store must be theirs,
        // and never falls back to memory when Redis is down (that could place a
        // second order); the submit is refused instead.
        let store: Arc<dyn IdempotencyStore> = match &redis {
            Some(redis) => Arc::new(RedisStore::new(redis.clone(), ttl)),
            None => Arc::new(MemoryStore::new(ttl, config.idempotency.max_entries)),
        };
        let orders = Arc::new(OrderService::new(
            broker.clone(),
            store,
            hex::encode(
                &Sha256::digest([b"idempotency scope\0".as_slice(), &identity].concat())[..16],
            ),
            OrderSettings {
                wait: config.idempotency.wait,
                lease: config.idempotency.lease,
                deadline: config.idempotency.resend_deadline,
            },
        ));
        let pq = &config.persisted_queries;
        let hardening = graphql::Hardening {
            limits: config.limits.clone(),
            introspection: config.server.introspection_on(config.listen),
            metrics: metrics.clone(),
            audit: Arc::new(crate::audit::AuditLog::open(config.audit.file.as_deref())?),
            apq: pq.enabled.then_some(pq.max_entries),
            allow_list: match &pq.allow_list {
                Some(path) => Some(graphql::persisted::AllowList::load(path)?),
                None => None,
            },
        };
        let schema = graphql::build_schema(broker.clone(), orders, pages, &identity, &hardening);
        let auth = Arc::new(Authenticator::new(&config.keys));
        if !auth.keys_configured() {
            tracing::warn!(
                listen = %config.listen,
                "no gateway API keys are configured: serving loopback only, every caller may trade"
            );
        }
        let state = AppState {
            schema,
            broker,
            auth,
            graphiql: config.server.graphiql_on(config.listen),
            breaker,
            redis,
            cached,
            responses: Arc::new(responses::ResponseCache::new(cache.clone())),
            metrics,
            cache: cache.stats(),
            ratelimit: Arc::new(ratelimit::RateLimiter::new(&config.rate_limit)),
            body_limit: config.server.body_limit_bytes,
        };
        let router = router(state, &config);
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
            cache: cache.stats(),
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

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        tracing::info!(addr = %self.local_addr(), "brokergraph listening; GraphQL at /graphql");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServeError::Io)?;
        #[cfg(feature = "embedded-sim")]
        if let Some(sim) = self.embedded {
            sim.shutdown().await;
        }
        Ok(())
    }
}

/// Binds and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    Gateway::bind(config).await?.run(shutdown_signal()).await
}

/// Identifies the broker account: stable across restarts and replicas of the same
/// account (so cursors survive a deploy and idempotency keys are scoped per account),
/// and secret because the key is; it signs cursors.
fn account_identity(url: &str, api_key: &Secret) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(b"brokergraph cursor v1\0");
    hasher.update(url.as_bytes());
    hasher.update([0]);
    hasher.update(api_key.expose().as_bytes());
    hasher.finalize().to_vec()
}

/// Names the account in cache keys: derived from the (secret) identity, so a cache
/// dump or debug log shows which account an entry belongs to but not the key.
fn cache_account(identity: &[u8]) -> String {
    hex::encode(&Sha256::digest([b"cache account\0".as_slice(), identity].concat())[..16])
}

fn router(state: AppState, config: &Config) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
    });
    let graphql = get(graphql_http::get_graphql)
        .post(graphql_http::post_graphql)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ratelimit::body_limit,
        ));
    let router = Router::new()
        .route("/graphql", graphql)
        .route("/metrics", get(metrics::metrics))
        .route("/graphiql/{hash}/{name}", graphiql::assets())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.server.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            config.server.request_timeout,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(trace)
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    match cors::layer(&config.server.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
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
