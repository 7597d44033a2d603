//! Start-up: every service of one gateway built from the configuration, wired in
//! the order the layers stack (adapter, meter, resilience, cache and throttle,
//! orders, GraphQL). The HTTP server (`server`) takes the result and only serves
//! it; this is the one place that knows every layer.

mod adapter;
mod identity;
mod registry;

use std::sync::Arc;

use crate::auth::jwt::JwtVerifier;
use crate::auth::Authenticator;
use crate::broker::alpaca::AlpacaBrokerConfigError;
use crate::broker::generic::GenericBrokerConfigError;
use crate::broker::{Broker, Layered, QuoteStream};
use crate::cache::{CacheStatsHandle, CacheStore, CachedBroker};
use crate::cluster::event_log::EventLog;
use crate::cluster::lease::Lease;
use crate::cluster::symbols::SharedSymbols;
use crate::cluster::Redis;
use crate::config::Config;
use crate::graphql::{self, Executor, PageSizes};
use crate::idempotency::{IdempotencyStore, MemoryStore, RedisStore};
use crate::metrics::{Meter, Metrics};
use crate::orders::{OrderService, OrderSettings};
use crate::resilience::{CircuitBreaker, Resilience, ResilientBroker, RetryPolicy};
use crate::streams::{
    self, FeedSettings, OrderFeed, QuoteHub, QuotePump, Replication, SharedQuoteStream,
};
use crate::tokens::{self, FileStore, TokenSource, TokenStore};
use identity::AccountIdentity;
pub(crate) use registry::{AccountRegistry, LinkError};

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
    #[error(transparent)]
    Config(crate::config::ConfigError),
    #[error("account {account}: OAuth: {reason}")]
    OAuth { account: String, reason: String },
    #[error("OAuth accounts need token_store.key (BROKERGRAPH_STORE_KEY, 64 hex characters)")]
    NoStoreKey,
    #[error(transparent)]
    TokenStore(#[from] crate::tokens::StoreError),
    #[error("auth.jwt: {0}")]
    Jwt(String),
    #[error("linked accounts: {0}")]
    Linked(String),
}

/// What the HTTP server serves: one stack per broker account, and what they share.
pub(crate) struct Services {
    /// The config file's accounts (in its order, `default` first when configured)
    /// and those linked at run time.
    pub accounts: AccountRegistry,
    pub auth: Arc<Authenticator>,
    /// The Redis replicas share, if configured; `/readyz` reports it.
    pub redis: Option<Arc<Redis>>,
    pub metrics: Arc<Metrics>,
    pub cache: CacheStatsHandle,
    /// Keeps the embedded paper broker alive as long as the gateway.
    #[cfg(feature = "embedded-sim")]
    pub embedded: Option<crate::embedded::EmbeddedBroker>,
}

/// Everything of one broker account: its adapter, retries and breaker, cache and
/// throttle, order service, order feed and schema. Nothing in it is shared with
/// another account's, except the bounded stores keyed by account (resource cache,
/// idempotency records). A per-account service (a quote hub) is one more field.
pub(crate) struct AccountServices {
    /// The gateway's name for the account (`[[accounts]] id`), never a secret.
    pub id: String,
    pub executor: Executor,
    /// The cached broker, which `/readyz` asks for the account.
    pub broker: Arc<dyn Broker>,
    /// The account's circuit breaker, which `/readyz` and `/metrics` report.
    pub breaker: Arc<CircuitBreaker>,
    /// Its OAuth tokens, when it has them: `/metrics` reports their expiry.
    pub tokens: Option<Arc<TokenSource>>,
    /// The account as configured or linked (its credentials, to refuse a second
    /// account on them).
    pub account: crate::config::Account,
    /// A linked account's stored entry, to tell a changed one from the same.
    pub linked_from: Option<serde_json::Value>,
    /// Set when the account is removed or replaced: its open streams end.
    removed: tokio::sync::watch::Sender<bool>,
}

impl Services {
    pub(crate) async fn build(config: &Config) -> Result<Services, StartError> {
        let accounts = config.accounts().map_err(StartError::Config)?;
        let redis = Redis::open(&config.redis)?.map(Arc::new);
        if let Some(redis) = &redis {
            redis.check_eviction_policy().await;
        }
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared {
            hardening: hardening(config, metrics.clone(), redis.as_ref())?,
            metrics,
            store: CacheStore::new(&config.cache),
            idempotency: idempotency_store(config, redis.as_ref()),
            redis: redis.clone(),
            instance: uuid::Uuid::new_v4().to_string(),
        });
        #[cfg(feature = "embedded-sim")]
        let mut embedded = None;
        let store = token_store(config, &accounts, redis.as_ref())?;
        let mut stacks = Vec::with_capacity(accounts.len());
        for account in &accounts {
            #[cfg_attr(not(feature = "embedded-sim"), allow(unused_mut))]
            let mut endpoint = adapter::connect(config, account, store.as_ref()).await?;
            #[cfg(feature = "embedded-sim")]
            if let Some(sim) = endpoint.embedded.take() {
                embedded = Some(sim);
            }
            stacks.push(AccountServices::build(config, &shared, account, endpoint));
        }
        let mut registry = AccountRegistry::new(stacks);
        if config.admin.enabled() {
            let linked = linked_store(config, redis.as_ref())?;
            registry = registry
                .with_linker(config, shared.clone(), store.clone(), linked)
                .await?;
        }
        let mut auth = Authenticator::new(&config.keys);
        if let Some(jwt) = &config.auth.jwt {
            let verifier = JwtVerifier::new(jwt)
                .await
                .map_err(|e| StartError::Jwt(e.to_string()))?;
            auth = auth.with_jwt(verifier);
        }
        let auth = Arc::new(auth);
        if !auth.keys_configured() {
            tracing::warn!(
                listen = %config.listen,
                "no gateway API keys are configured: serving loopback only, every caller may trade"
            );
        }
        Ok(Services {
            accounts: registry,
            auth,
            redis,
            metrics: shared.metrics.clone(),
            cache: shared.store.stats(),
            #[cfg(feature = "embedded-sim")]
            embedded,
        })
    }

    /// The stack of the caller's account; `None` for an account that does not
    /// exist (a JWT's claim, or an account unlinked since).
    pub(crate) async fn account(&self, id: &str) -> Option<Arc<AccountServices>> {
        self.accounts.get(id).await
    }
}

/// What the accounts' stacks share: bounded stores keyed by account, the counters,
/// the audit log, Redis.
struct Shared {
    metrics: Arc<Metrics>,
    store: Arc<CacheStore>,
    idempotency: Arc<dyn IdempotencyStore>,
    hardening: graphql::Hardening,
    redis: Option<Arc<Redis>>,
    /// This process's name in Redis leases: unique per start.
    instance: String,
}

impl AccountServices {
    /// Completes when the account is removed or replaced.
    pub(crate) fn removed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.removed.subscribe();
        async move {
            let _ = rx.wait_for(|removed| *removed).await;
        }
    }

    fn remove(&self) {
        self.removed.send_replace(true);
    }

    fn build(
        config: &Config,
        shared: &Shared,
        account: &crate::config::Account,
        endpoint: adapter::Endpoint,
    ) -> AccountServices {
        let id = account.id.as_str();
        let identity = AccountIdentity::new(&endpoint.url, &endpoint.identity);
        let metered: Arc<dyn Broker> = Arc::new(Layered::new(
            endpoint.broker,
            Meter::new(&shared.metrics, id),
        ));
        let resilient = ResilientBroker::new(metered, Resilience::new(RetryPolicy::default()));
        let breaker = resilient.layer().breaker();
        let resilient = Arc::new(resilient);
        let mut cached = CachedBroker::new(
            resilient.clone(),
            &identity.cache_account(),
            shared.store.clone(),
            &config.throttle,
        );
        if let Some(redis) = &shared.redis {
            cached = cached.with_replicas(redis.clone());
        }
        let cached = Arc::new(cached);
        let broker: Arc<dyn Broker> = cached.clone();
        let orders = Arc::new(OrderService::new(
            broker.clone(),
            shared.idempotency.clone(),
            identity.idempotency_scope(),
            OrderSettings {
                wait: config.idempotency.wait,
                lease: config.idempotency.lease,
                deadline: config.idempotency.resend_deadline,
                collar: config.orders.collar(),
            },
        ));
        // With replicas, one of them holds the credential's streams (orders and
        // quotes) and the others follow through Redis.
        let shared_symbols = shared.redis.as_ref().map(|redis| {
            Arc::new(SharedSymbols::new(
                redis.clone(),
                &identity.stream_name(),
                &shared.instance,
                config.subscriptions.lease,
            ))
        });
        let feed = OrderFeed::new(
            endpoint.stream,
            resilient,
            cached.clone(),
            FeedSettings {
                linger: config.subscriptions.linger,
                history: config.subscriptions.history,
            },
            shared.metrics.streams(id),
            shared.redis.as_ref().map(|redis| {
                let name = identity.stream_name();
                Replication::new(
                    EventLog::new(
                        redis.clone(),
                        &name,
                        config.subscriptions.history,
                        streams::HISTORY_AGE,
                    ),
                    Lease::new(
                        redis.clone(),
                        &name,
                        &shared.instance,
                        config.subscriptions.lease,
                    ),
                    shared_symbols
                        .clone()
                        .map(|symbols| QuotePump::new(endpoint.quotes.clone(), symbols)),
                )
            }),
        );
        let quote_source: Arc<dyn QuoteStream> = match shared_symbols {
            Some(symbols) => Arc::new(SharedQuoteStream::new(
                symbols,
                endpoint.quotes.symbol_limit(),
                feed.clone(),
            )),
            None => endpoint.quotes,
        };
        let quotes = graphql::Quotes {
            hub: QuoteHub::new(
                quote_source,
                config.subscriptions.linger,
                shared.metrics.quotes(id),
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
            &shared.hardening,
        );
        AccountServices {
            id: id.to_string(),
            executor: Executor::new(schema, cached, quotes, shared.hardening.documents.clone()),
            broker,
            breaker,
            tokens: endpoint.tokens,
            account: account.clone(),
            linked_from: None,
            removed: tokio::sync::watch::channel(false).0,
        }
    }
}

/// The token store, when an account uses OAuth: Redis when replicas share one,
/// else the file, opened (and decrypted) now so a bad one stops the start.
fn token_store(
    config: &Config,
    accounts: &[crate::config::Account],
    redis: Option<&Arc<Redis>>,
) -> Result<Option<Arc<dyn TokenStore>>, StartError> {
    let oauth = accounts
        .iter()
        .any(|a| matches!(a.credentials, Some(crate::config::Credentials::OAuth(_))));
    // A linked account may use OAuth.
    if !oauth && !config.admin.enabled() {
        return Ok(None);
    }
    let key = config
        .token_store
        .key_bytes()
        .ok_or(StartError::NoStoreKey)?;
    Ok(Some(match redis {
        Some(redis) => Arc::new(tokens::RedisStore::new(redis.clone(), &key)),
        None => Arc::new(FileStore::open(&config.token_store.path, &key)?),
    }))
}

/// Where linked accounts are kept: beside the token store, sealed with its key.
fn linked_store(
    config: &Config,
    redis: Option<&Arc<Redis>>,
) -> Result<Arc<dyn tokens::LinkedStore>, StartError> {
    let key = config
        .token_store
        .key_bytes()
        .ok_or(StartError::NoStoreKey)?;
    Ok(match redis {
        Some(redis) => Arc::new(tokens::LinkedRedis::new(redis.clone(), &key)),
        None => Arc::new(tokens::LinkedFile::open(&config.token_store.path, &key)?),
    })
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

fn hardening(
    config: &Config,
    metrics: Arc<Metrics>,
    redis: Option<&Arc<Redis>>,
) -> Result<graphql::Hardening, StartError> {
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
        apq_shared: redis.map(|redis| graphql::SharedApq {
            redis: redis.clone(),
            ttl: pq.shared_ttl,
            max_bytes: pq.shared_max_bytes,
        }),
        documents: graphql::DocumentCache::default(),
    })
}
