//! Start-up: every service of one gateway built from the configuration, wired in
//! the order the layers stack (adapter, meter, resilience, cache and throttle,
//! orders, GraphQL). The HTTP server (`server`) takes the result and only serves
//! it; this is the one place that knows every layer.

mod adapter;
mod identity;

use std::sync::Arc;

use crate::auth::Authenticator;
use crate::broker::alpaca::AlpacaBrokerConfigError;
use crate::broker::generic::GenericBrokerConfigError;
use crate::broker::{Broker, Layered};
use crate::cache::{CacheStatsHandle, CacheStore, CachedBroker};
use crate::cluster::Redis;
use crate::config::Config;
use crate::graphql::{self, Executor, PageSizes};
use crate::idempotency::{IdempotencyStore, MemoryStore, RedisStore};
use crate::metrics::{Meter, Metrics};
use crate::orders::{OrderService, OrderSettings};
use crate::resilience::{CircuitBreaker, Resilience, ResilientBroker, RetryPolicy};
use crate::streams::{FeedSettings, OrderFeed, QuoteHub};
use identity::AccountIdentity;

/// Why the gateway could not start: always something an operator configured.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    AllowList(#[from] graphql::persisted::AllowListError),
    #[error(transparent)]
    Redis(#[from] crate::cluster::RedisError),
}

/// What the HTTP server serves.
pub(crate) struct Services {
    pub executor: Executor,
    /// The cached broker, which `/readyz` asks for the account.
    pub broker: Arc<dyn Broker>,
    pub auth: Arc<Authenticator>,
    /// The broker's circuit breaker, which `/readyz` and `/metrics` report.
    pub breaker: Arc<CircuitBreaker>,
    /// The Redis replicas share, if configured; `/readyz` reports it.
    pub redis: Option<Arc<Redis>>,
    pub metrics: Arc<Metrics>,
    pub cache: CacheStatsHandle,
    /// Keeps the embedded paper broker alive as long as the gateway.
    #[cfg(feature = "embedded-sim")]
    pub embedded: Option<crate::embedded::EmbeddedBroker>,
}

impl Services {
    pub(crate) async fn build(config: &Config) -> Result<Services, StartError> {
        let endpoint = adapter::connect(config).await?;
        let redis = Redis::open(&config.redis)?.map(Arc::new);
        if let Some(redis) = &redis {
            redis.check_eviction_policy().await;
        }
        let identity = AccountIdentity::new(&endpoint.url, &endpoint.identity);
        let metrics = Arc::new(Metrics::default());
        let metered: Arc<dyn Broker> =
            Arc::new(Layered::new(endpoint.broker, Meter::new(metrics.clone())));
        let resilient = ResilientBroker::new(metered, Resilience::new(RetryPolicy::default()));
        let breaker = resilient.layer().breaker();
        let resilient = Arc::new(resilient);
        let store = CacheStore::new(&config.cache);
        let mut cached = CachedBroker::new(
            resilient.clone(),
            &identity.cache_account(),
            store.clone(),
            &config.throttle,
        );
        if let Some(redis) = &redis {
            cached = cached.with_replicas(redis.clone());
        }
        let cached = Arc::new(cached);
        let broker: Arc<dyn Broker> = cached.clone();
        let orders = Arc::new(OrderService::new(
            broker.clone(),
            idempotency_store(config, redis.as_ref()),
            identity.idempotency_scope(),
            OrderSettings {
                wait: config.idempotency.wait,
                lease: config.idempotency.lease,
                deadline: config.idempotency.resend_deadline,
                collar: config.orders.collar(),
            },
        ));
        let feed = OrderFeed::new(
            endpoint.stream,
            resilient,
            cached.clone(),
            FeedSettings {
                linger: config.subscriptions.linger,
                history: config.subscriptions.history,
            },
            metrics.streams().clone(),
        );
        let quotes = graphql::Quotes {
            hub: QuoteHub::new(
                endpoint.quotes,
                config.subscriptions.linger,
                metrics.quotes().clone(),
            ),
            ttl: config.cache.quote_ttl,
            max_symbols: config.subscriptions.max_symbols,
        };
        let schema = graphql::build_schema(
            broker.clone(),
            orders,
            feed,
            quotes.clone(),
            PageSizes {
                default: config.graphql.default_page_size,
                max: config.graphql.max_page_size,
            },
            identity.cursor_secret(),
            &hardening(config, metrics.clone())?,
        );
        let auth = Arc::new(Authenticator::new(&config.keys));
        if !auth.keys_configured() {
            tracing::warn!(
                listen = %config.listen,
                "no gateway API keys are configured: serving loopback only, every caller may trade"
            );
        }
        Ok(Services {
            executor: Executor::new(schema, cached, quotes),
            broker,
            auth,
            breaker,
            redis,
            metrics,
            cache: store.stats(),
            #[cfg(feature = "embedded-sim")]
            embedded: endpoint.embedded,
        })
    }
}

/// With replicas, a retry may land on any of them: the store must be theirs, and
/// never falls back to memory when Redis is down (that could place a second
/// order); the submit is refused instead.
fn idempotency_store(config: &Config, redis: Option<&Arc<Redis>>) -> Arc<dyn IdempotencyStore> {
    let ttl = config.idempotency.ttl;
    match redis {
        Some(redis) => Arc::new(RedisStore::new(redis.clone(), ttl)),
        None => Arc::new(MemoryStore::new(ttl, config.idempotency.max_entries)),
    }
}

fn hardening(config: &Config, metrics: Arc<Metrics>) -> Result<graphql::Hardening, StartError> {
    let pq = &config.persisted_queries;
    Ok(graphql::Hardening {
        limits: config.limits.clone(),
        introspection: config.server.introspection_on(config.listen),
        metrics,
        audit: Arc::new(crate::audit::AuditLog::open(config.audit.file.as_deref())?),
        apq: pq.enabled.then_some(pq.max_entries),
        allow_list: match &pq.allow_list {
            Some(path) => Some(graphql::persisted::AllowList::load(path)?),
            None => None,
        },
    })
}
