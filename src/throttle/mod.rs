//! Spends the broker's rate-limit budget so that its 429 is practically never
//! reached (docs/cache.md, "Rate-limit budget").
//!
//! One `Throttle` per broker API key (the broker counts per key). It learns the
//! budget from `X-RateLimit-*` (via `Broker::rate_limit()`, assumed from config
//! until the first response), keeps a reserve for submits, cancels and the reads
//! that confirm them, paces plain reads across the window, and honours
//! `Retry-After` when a 429 comes anyway. A read that has a cached value to fall
//! back on never waits here: the cache serves it stale instead.

mod budget;
mod cluster_budget;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use budget::Budget;
pub(crate) use budget::Priority;
pub(crate) use cluster_budget::ClusterBudget;

use crate::broker::{BrokerError, RateLimitSnapshot};
use crate::config::ThrottleSettings;

/// What the throttle did, for the cache's stats: one set per cache store, shared
/// by the throttles of its accounts.
#[derive(Debug, Default)]
pub(crate) struct ThrottleCounters {
    /// Calls that waited for budget.
    pub waits: AtomicU64,
    /// Calls that found no budget in time and did not wait (served stale, or RATE_LIMITED).
    pub refusals: AtomicU64,
    /// 429s the broker sent despite the throttle.
    pub broker_429s: AtomicU64,
}

pub(crate) struct Throttle {
    budget: Mutex<Budget>,
    max_read_wait: Duration,
    max_mutation_wait: Duration,
    counters: Arc<ThrottleCounters>,
    /// With several replicas: the window's count in Redis, which all of them take
    /// from. `budget` then only learns the limit and window (and stands in while
    /// Redis is unreachable).
    cluster: Option<ClusterBudget>,
}

impl Throttle {
    pub(crate) fn new(settings: &ThrottleSettings, counters: Arc<ThrottleCounters>) -> Self {
        Throttle {
            budget: Mutex::new(Budget::new(
                settings.requests,
                settings.window,
                settings.reserve_percent,
            )),
            max_read_wait: settings.max_read_wait,
            max_mutation_wait: settings.max_mutation_wait,
            counters,
            cluster: None,
        }
    }

    /// Draws from the budget all replicas share instead of this process's own.
    pub(crate) fn share(&mut self, cluster: ClusterBudget) {
        self.cluster = Some(cluster);
    }

    /// Takes one call now, or says when to ask again.
    async fn try_take(&self, priority: Priority, now: Instant) -> Result<(), Instant> {
        if let Some(cluster) = &self.cluster {
            let (share, burst, window) = self.budget().caps(priority);
            match cluster.take(window, share, burst).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(now + wait),
                // Redis is down: this replica's own count is the best left. The
                // broker's headers and 429s still hold every replica back.
                Err(e) => {
                    tracing::debug!(error = %e, "shared budget unavailable; using the local one")
                }
            }
        }
        self.budget().try_take(priority, now)
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, Budget> {
        // The budget is plain numbers, always consistent between statements: a
        // panic elsewhere while holding the lock cannot leave it half-updated.
        self.budget.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for budget to make one broker call. `may_wait: false` (a read that can
    /// be answered from cache) returns at once when there is none. Without budget
    /// in time: `RateLimited` with when to come back, as the broker would say it.
    pub(crate) async fn acquire(
        &self,
        priority: Priority,
        may_wait: bool,
    ) -> Result<(), BrokerError> {
        let max_wait = match (may_wait, priority) {
            (false, _) => Duration::ZERO,
            (true, Priority::Mutation) => self.max_mutation_wait,
            (true, _) => self.max_read_wait,
        };
        let deadline = Instant::now() + max_wait;
        let mut waited = false;
        loop {
            let now = Instant::now();
            let next = match self.try_take(priority, now).await {
                Ok(()) => return Ok(()),
                Err(next) => next,
            };
            if next > deadline {
                self.counters.refusals.fetch_add(1, Relaxed);
                return Err(BrokerError::RateLimited {
                    retry_after: Some(next.saturating_duration_since(now)),
                });
            }
            if !waited {
                waited = true;
                self.counters.waits.fetch_add(1, Relaxed);
            }
            tracing::debug!(
                ?priority,
                wait_ms = next.saturating_duration_since(now).as_millis() as u64,
                "waiting for broker rate-limit budget"
            );
            tokio::time::sleep_until(next.into()).await;
        }
    }

    /// Learns from one finished call: the broker's headers, and a 429 if it sent one.
    pub(crate) async fn observe<T>(
        &self,
        snapshot: Option<RateLimitSnapshot>,
        result: &Result<T, BrokerError>,
    ) {
        self.observe_local(snapshot.as_ref(), result);
        let Some(cluster) = &self.cluster else {
            return;
        };
        let wall = SystemTime::now();
        let outcome = match (result, snapshot.and_then(|s| Budget::reading(&s, wall))) {
            (Err(BrokerError::RateLimited { retry_after }), _) => cluster.block(*retry_after).await,
            (_, Some((spent, reset_in))) => {
                let window = self.budget().caps(Priority::Mutation).2;
                cluster.observe(spent, reset_in, window).await
            }
            (_, None) => Ok(()),
        };
        if let Err(e) = outcome {
            tracing::debug!(error = %e, "could not share the broker's rate-limit reading");
        }
    }

    fn observe_local<T>(
        &self,
        snapshot: Option<&RateLimitSnapshot>,
        result: &Result<T, BrokerError>,
    ) {
        let now = Instant::now();
        let mut budget = self.budget();
        if let Some(snap) = snapshot {
            budget.observe(snap, now, SystemTime::now());
        }
        if let Err(BrokerError::RateLimited { retry_after }) = result {
            self.counters.broker_429s.fetch_add(1, Relaxed);
            tracing::warn!(
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                "the broker rate-limited us despite the throttle; pausing"
            );
            budget.rate_limited(*retry_after, now);
        }
    }
}
