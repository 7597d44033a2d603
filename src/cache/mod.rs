//! The read cache (docs/cache.md): a `Broker` that wraps a `Broker`, so nothing
//! above it knows it is there.
//!
//! - One moka cache per resource (`CacheStore`), every key carrying the broker
//!   account; bounded by `cache.max_entries` and `cache.max_bytes` each, so eight
//!   caches hold at most `8 × max_bytes` of values (default 8 × 32 MiB = 256 MiB,
//!   plus roughly 200 bytes of bookkeeping per entry, at most 80 000 entries).
//! - Concurrent misses of one key make one broker call (moka `try_get_with`).
//! - Values are kept past their TTL, up to `cache.stale_ttl_ms`, and served when a
//!   refresh fails with 429, 5xx or a timeout, or when the throttle has no budget
//!   for a read. The client learns it from `extensions.stale` (`graphql::execute`) and
//!   from each object's `asOf`, which stays that of the original read.
//! - Orders and instruments in list pages are also cached by id and symbol.
//! - A submit or cancel bumps the account's epoch: the account, positions and
//!   order lists read before it are never fresh again, and the orders it returned
//!   are cached by id.
//! - With replicas on Redis, a miss reads the L2 cache they share before the
//!   broker, and a broker read writes it (`l2`).

mod fill;
mod keys;
mod l2;
mod read;
mod replicas;
mod slot;
mod stats;
mod writes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::broker::{Broker, BrokerError, RateLimitSnapshot, Route, MAX_QUOTE_SYMBOLS};
use crate::config::{CacheSettings, ThrottleSettings};
use crate::domain::{
    Account, CanceledOrders, Instrument, NewOrder, Order, OrderQuery, OrderReplacement, Page,
    PageRequest, Position, PositionClose, Quote, Replaced, Submitted,
};
use crate::throttle::Throttle;
use keys::OrdersQuery;
use l2::{Codec, L2};
use read::Policy;
use slot::Slot;
pub(crate) use stats::Counters;
pub use stats::{CacheStats, CacheStatsHandle};

/// The caches of every resource. One per gateway; may be shared by the
/// `CachedBroker`s of several broker accounts, since keys carry the account.
pub struct CacheStore {
    account: Slot<(), Account>,
    instrument: Slot<String, Instrument>,
    instruments: Slot<PageRequest, Page<Instrument>>,
    positions: Slot<PageRequest, Page<Position>>,
    order: Slot<String, Order>,
    orders: Slot<OrdersQuery, Page<Order>>,
    quote: Slot<String, Quote>,
    /// Snapshots, keyed by the sorted symbols the cache did not have fresh: what
    /// concurrent requests for the same symbols share one broker call through.
    quotes: Slot<Vec<String>, Vec<Quote>>,
    settings: CacheSettings,
    stale_ttl: Duration,
    counters: Arc<Counters>,
    seq: AtomicU64,
    /// Bumped after every put, removal and mutation epoch: a whole response whose
    /// reads all happened within one generation, and before their TTLs, is what the
    /// resource caches would answer again (`graphql::responses`).
    generation: Arc<AtomicU64>,
}

impl CacheStore {
    pub fn new(settings: &CacheSettings) -> Arc<CacheStore> {
        let g = Arc::new(AtomicU64::new(1));
        Arc::new(CacheStore {
            account: Slot::new("account", settings, g.clone()),
            instrument: Slot::new("instrument", settings, g.clone()),
            instruments: Slot::new("instruments", settings, g.clone()),
            positions: Slot::new("positions", settings, g.clone()),
            order: Slot::new("order", settings, g.clone()),
            orders: Slot::new("orders", settings, g.clone()),
            quote: Slot::new("quote", settings, g.clone()),
            quotes: Slot::new("quotes", settings, g.clone()),
            generation: g,
            settings: settings.clone(),
            stale_ttl: settings.stale_ttl,
            counters: Arc::default(),
            seq: AtomicU64::new(1),
        })
    }

    pub fn stats(&self) -> CacheStatsHandle {
        CacheStatsHandle(self.counters.clone())
    }

    /// See `generation`: equal before and after a request means none of its
    /// reads was replaced or invalidated meanwhile.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// One broker account seen through the cache and the throttle.
pub struct CachedBroker {
    inner: Arc<dyn Broker>,
    account: Arc<str>,
    store: Arc<CacheStore>,
    /// Per account, because the broker's budget is per API key.
    throttle: Throttle,
    /// Bumped by every submit or cancel that may have changed the account.
    epoch: AtomicU64,
    /// With several replicas: how they tell each other of mutations (`replicas`).
    replicas: Option<crate::cluster::epoch::ClusterEpoch>,
    /// With several replicas: the reads they share (`l2`).
    l2: Option<L2>,
    /// The account's order stream is up: order data may live `read::STREAMED_TTL`.
    streamed: std::sync::atomic::AtomicBool,
}

impl CachedBroker {
    /// `account` identifies the broker account in cache keys (not a secret: pass a
    /// hash, never the API key).
    pub fn new(
        inner: Arc<dyn Broker>,
        account: &str,
        store: Arc<CacheStore>,
        throttle: &ThrottleSettings,
    ) -> CachedBroker {
        CachedBroker {
            inner,
            account: Arc::from(account),
            throttle: Throttle::new(throttle, store.counters.throttle.clone()),
            store,
            epoch: AtomicU64::new(1),
            replicas: None,
            l2: None,
            streamed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn stats(&self) -> CacheStatsHandle {
        self.store.stats()
    }

    /// Moves on every put, removal, eviction and mutation epoch of the store: a
    /// whole answer built from reads that all happened within one generation, and
    /// before their TTLs, is what these caches would answer again. What the response
    /// cache (`graphql::responses`) relies on to reuse an answer exactly.
    pub(crate) fn generation(&self) -> u64 {
        self.store.generation()
    }

    /// Told by the order feed when its stream is up (subscribed and reconciled) and
    /// when it goes down.
    pub(crate) fn set_streamed(&self, up: bool) {
        self.streamed.store(up, Ordering::Relaxed);
    }

    fn order_ttl(store: &CacheStore, order: &Order) -> Duration {
        let s = &store.settings;
        if order.status.is_terminal() {
            s.terminal_order_ttl
        } else {
            s.open_order_ttl
        }
    }
}

#[async_trait]
impl Broker for CachedBroker {
    #[tracing::instrument(skip_all, fields(route = Route::Account.as_str()))]
    async fn account(&self) -> Result<Account, BrokerError> {
        let policy = Policy {
            route: Route::Account,
            mutable: true,
            ttl: |s, _| s.settings.account_ttl,
            streamed: false,
            l2: Some(Codec::new("account", true)),
            remember: None,
        };
        self.read(&self.store.account, (), policy, || self.inner.account())
            .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::Instrument.as_str(), symbol))]
    async fn instrument(&self, symbol: &str) -> Result<Instrument, BrokerError> {
        let policy = Policy {
            route: Route::Instrument,
            mutable: false,
            ttl: |s, _| s.settings.instruments_ttl,
            streamed: false,
            l2: Some(Codec::new("instrument", false)),
            remember: None,
        };
        let slot = &self.store.instrument;
        self.read(slot, symbol.to_string(), policy, || {
            self.inner.instrument(symbol)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::Instruments.as_str(), limit = page.limit))]
    async fn instruments(&self, page: &PageRequest) -> Result<Page<Instrument>, BrokerError> {
        let policy = Policy {
            route: Route::Instruments,
            mutable: false,
            ttl: |s, _| s.settings.instruments_ttl,
            streamed: false,
            l2: Some(Codec::new("instruments", false)),
            remember: Some(|broker, page: &Page<Instrument>, at| {
                Box::pin(broker.remember_instruments(&page.items, at))
            }),
        };
        let slot = &self.store.instruments;
        self.read(slot, page.clone(), policy, || self.inner.instruments(page))
            .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::Positions.as_str(), limit = page.limit))]
    async fn positions(&self, page: &PageRequest) -> Result<Page<Position>, BrokerError> {
        let policy = Policy {
            route: Route::Positions,
            mutable: true,
            ttl: |s, _| s.settings.positions_ttl,
            streamed: false,
            l2: Some(Codec::new("positions", true)),
            remember: None,
        };
        let slot = &self.store.positions;
        self.read(slot, page.clone(), policy, || self.inner.positions(page))
            .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::Order.as_str(), id))]
    async fn order(&self, id: &str) -> Result<Order, BrokerError> {
        let policy = Policy {
            route: Route::Order,
            mutable: false,
            ttl: CachedBroker::order_ttl,
            streamed: true,
            // A cancel on another replica changes it: stamped with the epoch.
            l2: Some(Codec::new("order", true)),
            remember: None,
        };
        self.read(&self.store.order, id.to_string(), policy, || {
            self.inner.order(id)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::Orders.as_str(), limit = page.limit))]
    async fn orders(
        &self,
        query: &OrderQuery,
        page: &PageRequest,
    ) -> Result<Page<Order>, BrokerError> {
        let policy = Policy {
            route: Route::Orders,
            mutable: true,
            ttl: |s, _| s.settings.orders_ttl,
            streamed: true,
            l2: Some(Codec::new("orders", true)),
            remember: Some(|broker, page: &Page<Order>, at| {
                Box::pin(broker.remember_orders(&page.items, at))
            }),
        };
        let slot = &self.store.orders;
        let key = (query.clone(), page.clone());
        self.read(slot, key, policy, || self.inner.orders(query, page))
            .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::SubmitOrder.as_str(), idempotency_key = %order.idempotency_key))]
    async fn submit_order(&self, order: &NewOrder) -> Result<Submitted, BrokerError> {
        self.write(
            Route::SubmitOrder,
            None,
            || self.inner.submit_order(order),
            |s| vec![s.order.clone()],
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::CancelOrder.as_str(), id))]
    async fn cancel_order(&self, id: &str) -> Result<Order, BrokerError> {
        self.write(
            Route::CancelOrder,
            Some(id),
            || self.inner.cancel_order(id),
            |o| vec![o.clone()],
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::ReplaceOrder.as_str(), id, idempotency_key = %replacement.idempotency_key))]
    async fn replace_order(
        &self,
        id: &str,
        replacement: &OrderReplacement,
    ) -> Result<Replaced, BrokerError> {
        self.write(
            Route::ReplaceOrder,
            Some(id),
            || self.inner.replace_order(id, replacement),
            |r| {
                std::iter::once(&r.order)
                    .chain(&r.replaced)
                    .cloned()
                    .collect()
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::ClosePosition.as_str(), symbol = %close.symbol, idempotency_key = %close.idempotency_key))]
    async fn close_position(&self, close: &PositionClose) -> Result<Submitted, BrokerError> {
        self.write(
            Route::ClosePosition,
            None,
            || self.inner.close_position(close),
            |s| vec![s.order.clone()],
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(route = Route::CancelAllOrders.as_str(), symbol))]
    async fn cancel_all_orders(&self, symbol: Option<&str>) -> Result<CanceledOrders, BrokerError> {
        self.write(
            Route::CancelAllOrders,
            None,
            || self.inner.cancel_all_orders(symbol),
            |c| c.canceled.iter().chain(&c.not_canceled).cloned().collect(),
        )
        .await
    }

    /// Snapshots of more than [`MAX_QUOTE_SYMBOLS`] are split into several broker
    /// calls; each part is cached on its own.
    #[tracing::instrument(skip_all, fields(route = Route::Quotes.as_str(), symbols = symbols.len()))]
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>, BrokerError> {
        let mut wanted = symbols.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut quotes = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        let ttl = self.store.settings.quote_ttl;
        for symbol in wanted {
            match self.fresh(&self.store.quote, symbol.clone(), ttl).await {
                Some(quote) => quotes.push(quote),
                None => missing.push(symbol),
            }
        }
        for part in missing.chunks(MAX_QUOTE_SYMBOLS) {
            let policy = Policy {
                route: Route::Quotes,
                mutable: false,
                ttl: |s, _| s.settings.quote_ttl,
                streamed: false,
                // Quotes move by the second: not worth a Redis round trip.
                l2: None,
                remember: Some(|broker, read: &Vec<Quote>, at| {
                    Box::pin(broker.remember_quotes(read, at))
                }),
            };
            let key = part.to_vec();
            let read = self
                .read(&self.store.quotes, key, policy, || self.inner.quotes(part))
                .await?;
            quotes.extend(read);
        }
        Ok(quotes)
    }

    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        self.inner.rate_limit()
    }
}
