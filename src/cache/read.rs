//! The read path every cached resource shares: fresh hit, single-flight refresh
//! through the throttle, stale fallback.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::keys::{Key, Weigh};
use super::l2::{Codec, Found};
use super::slot::{Entry, Slot};
use super::stats::Counters;
use super::CachedBroker;
use crate::broker::BrokerError;
use crate::broker::Route;
use crate::request::RequestScope;
use crate::throttle::Priority;

/// The broker could not be asked, or could not answer right now: a recent value is
/// better than an error. An answer (404, a 4xx refusal, a bad key, garbage) is not
/// papered over with an old value.
pub(crate) fn serves_stale(err: &BrokerError) -> bool {
    !matches!(
        err,
        BrokerError::NotFound
            | BrokerError::Rejected { .. }
            | BrokerError::Unauthorized
            | BrokerError::Decode(_)
            | BrokerError::ReauthRequired
    )
}

/// How one resource is cached.
pub(super) struct Policy<Q, V> {
    pub route: Route,
    /// Whether a submit or cancel can change it (account, positions, order lists).
    pub mutable: bool,
    pub ttl: fn(&super::CacheStore, &V) -> Duration,
    /// Whether the broker's order stream tells us of every change to it (orders
    /// and order lists): while the stream is up it may be kept `STREAMED_TTL`.
    pub streamed: bool,
    /// Shared with the other replicas through L2 (when they share a Redis).
    pub l2: Option<Codec<Q, V>>,
    /// What else a value read brings (a list's orders by id), from the broker or L2.
    pub remember: Option<Remember<V>>,
}

/// Given the value and when the broker answered it.
pub(super) type Remember<V> = for<'a> fn(&'a CachedBroker, &'a V, Instant) -> BoxFuture<'a, ()>;

/// How long order data stays fresh while the order stream is up: each event
/// invalidates what it changes before it is published, so the TTL is only a bound
/// on what a message the broker lost silently can cost (a reconnect reconciles).
pub(super) const STREAMED_TTL: Duration = Duration::from_secs(10);

impl CachedBroker {
    /// Reads `query` of `slot` through the cache; `fetch` makes the broker call.
    pub(super) async fn read<Q, V, F, Fut>(
        &self,
        slot: &Slot<Q, V>,
        query: Q,
        policy: Policy<Q, V>,
        fetch: F,
    ) -> Result<V, BrokerError>
    where
        Q: Clone + Eq + Hash + Send + Sync + 'static,
        V: Clone + Weigh + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<V, BrokerError>> + Send,
    {
        let store = &*self.store;
        let counters = &*store.counters;
        let key = Key {
            account: self.account.clone(),
            query,
        };
        let epoch = if policy.mutable {
            self.epoch.load(Ordering::Acquire)
        } else {
            0
        };
        let streamed = policy.streamed && self.streamed.load(Ordering::Relaxed);
        let ttl = |v: &V| match streamed {
            true => (policy.ttl)(store, v).max(STREAMED_TTL),
            false => (policy.ttl)(store, v),
        };
        let fresh = |e: &Entry<V>, now: Instant| e.epoch == epoch && e.age(now) < ttl(&e.value);
        let now = Instant::now();
        let cached = slot.values.get(&key).await;
        if let Some(e) = cached.as_ref().filter(|e| fresh(e, now)) {
            Counters::bump(&counters.hits);
            RequestScope::record_fresh(e.fetched_at + ttl(&e.value));
            return Ok(e.value.clone());
        }
        let seen = cached.as_ref().map_or(0, |e| e.seq);
        let fallback = cached.filter(|e| e.age(now) < store.stale_ttl);
        if let Some(e) = &fallback {
            if slot.cooling.contains_key(&key) {
                return Ok(self.serve_stale(slot, e));
            }
        }
        // The first read of something a mutation changed confirms the mutation.
        let priority = match &fallback {
            Some(e) if e.epoch < epoch => Priority::Confirm,
            Some(_) => Priority::Refresh,
            None if RequestScope::reading_for_mutation() => Priority::Mutation,
            None => Priority::Read,
        };
        let flight = (key.clone(), seen, epoch);
        let ran = AtomicBool::new(false);
        let called = AtomicBool::new(false);
        let result = slot
            .flights
            .try_get_with(flight.clone(), async {
                ran.store(true, Ordering::Relaxed);
                // A flight that landed between our look and now: nothing to fetch.
                if let Some(e) = slot.values.get(&key).await {
                    if e.seq != seen && fresh(&e, Instant::now()) {
                        return Ok(e);
                    }
                }
                let shared = self.l2.as_ref().zip(policy.l2.as_ref());
                let mut claim = None;
                if let Some((l2, codec)) = shared {
                    let base_ttl = |v: &V| (policy.ttl)(store, v);
                    match l2.find(codec, &key.query, base_ttl).await {
                        Ok(Found::Value(value, age)) => {
                            Counters::bump(&counters.l2_hits);
                            let now = Instant::now();
                            let at = now.checked_sub(age).unwrap_or(now);
                            return Ok(self.keep(slot, &key, &policy, value, at, epoch).await);
                        }
                        Ok(Found::Fetch(c)) => {
                            Counters::bump(&counters.l2_misses);
                            claim = Some(c);
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "l2 unreachable: reading from the broker")
                        }
                    }
                }
                let result = async {
                    self.throttle.acquire(priority, fallback.is_none()).await?;
                    called.store(true, Ordering::Relaxed);
                    counters.call(policy.route);
                    let result = fetch().await;
                    self.throttle
                        .observe(self.inner.rate_limit(), &result)
                        .await;
                    result
                }
                .await;
                let answered = Instant::now();
                if let (Some((l2, codec)), Some(claim)) = (shared, claim) {
                    let value = result.as_ref().ok();
                    let ttl = value.map_or(Duration::ZERO, |v| (policy.ttl)(store, v));
                    l2.store(codec, claim, value, answered.elapsed(), ttl).await;
                }
                Ok::<_, BrokerError>(
                    self.keep(slot, &key, &policy, result?, answered, epoch)
                        .await,
                )
            })
            .await;
        let called = called.load(Ordering::Relaxed);
        if ran.load(Ordering::Relaxed) {
            slot.flights.invalidate(&flight).await;
            Counters::bump(if called {
                &counters.misses
            } else {
                &counters.hits
            });
        } else {
            Counters::bump(&counters.coalesced);
        }
        match result {
            Ok(entry) => {
                RequestScope::record_fresh(entry.fetched_at + ttl(&entry.value));
                Ok(entry.value.clone())
            }
            Err(err) => match fallback {
                Some(e) if serves_stale(&err) => {
                    if called {
                        slot.cooling.insert(key, ());
                    }
                    tracing::debug!(resource = slot.name, error = %err, "serving a stale value");
                    Ok(self.serve_stale(slot, &e))
                }
                _ => {
                    RequestScope::record_uncached();
                    Err((*err).clone())
                }
            },
        }
    }

    /// Caches a value read at `at` (from the broker, or another replica's read
    /// through L2), with what it brings.
    async fn keep<Q, V>(
        &self,
        slot: &Slot<Q, V>,
        key: &Key<Q>,
        policy: &Policy<Q, V>,
        value: V,
        at: Instant,
        epoch: u64,
    ) -> Arc<Entry<V>>
    where
        Q: Clone + Eq + Hash + Send + Sync + 'static,
        V: Clone + Weigh + Send + Sync + 'static,
    {
        let store = &*self.store;
        if let Some(remember) = policy.remember {
            remember(self, &value, at).await;
        }
        let streamed = policy.streamed && self.streamed.load(Ordering::Relaxed);
        let ttl = match streamed {
            true => (policy.ttl)(store, &value).max(STREAMED_TTL),
            false => (policy.ttl)(store, &value),
        };
        let keep = ttl.max(store.stale_ttl);
        let entry = Arc::new(slot.entry(value, at, store.next_seq(), epoch, keep));
        slot.put(key.clone(), entry.clone()).await;
        entry
    }

    /// The cached value of `query` while it is fresh (a resource no mutation
    /// changes), without asking the broker: for reads that batch their misses.
    pub(super) async fn fresh<Q, V>(&self, slot: &Slot<Q, V>, query: Q, ttl: Duration) -> Option<V>
    where
        Q: Clone + Eq + Hash + Send + Sync + 'static,
        V: Clone + Weigh + Send + Sync + 'static,
    {
        let entry = slot.values.get(&self.key(query)).await?;
        if entry.age(Instant::now()) >= ttl {
            return None;
        }
        Counters::bump(&self.store.counters.hits);
        RequestScope::record_fresh(entry.fetched_at + ttl);
        Some(entry.value.clone())
    }

    fn serve_stale<Q, V: Clone>(&self, slot: &Slot<Q, V>, entry: &Entry<V>) -> V {
        Counters::bump(&self.store.counters.stale_served);
        RequestScope::record_stale(slot.name, entry.age(Instant::now()));
        entry.value.clone()
    }
}
