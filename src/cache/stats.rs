//! Counters of the cache and its throttles, cheap enough to bump on every read (one
//! relaxed atomic add), readable at any time as a `CacheStats` snapshot by the
//! benchmark, the tests and `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::broker::Route;
use crate::throttle::ThrottleCounters;

/// A point-in-time copy of the counters since the gateway started.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Reads answered from a fresh cached value.
    pub hits: u64,
    /// Reads that started a broker call.
    pub misses: u64,
    /// Reads that joined a broker call another read had started (single-flight).
    pub coalesced: u64,
    /// Reads answered with a value past its TTL because the broker could not be asked.
    pub stale_served: u64,
    /// Misses answered by another replica's read through L2 (also counted in `hits`).
    pub l2_hits: u64,
    /// Misses L2 could not answer, which went on to the broker.
    pub l2_misses: u64,
    /// Calls made to the layer below, by route (`"account"`, see `broker::Route`),
    /// reads and writes.
    pub broker_calls: BTreeMap<String, u64>,
    /// Times a call waited for rate-limit budget.
    pub throttle_waits: u64,
    /// Times a call found no budget and did not wait (served stale, or RATE_LIMITED).
    pub throttle_refusals: u64,
    /// 429s the broker sent despite the throttle.
    pub broker_429s: u64,
    /// Successful submits and cancels that invalidated an account's cached state.
    pub invalidations: u64,
}

impl CacheStats {
    /// All broker calls, every route.
    pub fn total_broker_calls(&self) -> u64 {
        self.broker_calls.values().sum()
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub coalesced: AtomicU64,
    pub stale_served: AtomicU64,
    pub l2_hits: AtomicU64,
    pub l2_misses: AtomicU64,
    calls: [AtomicU64; Route::ALL.len()],
    pub invalidations: AtomicU64,
    /// Handed to every account's throttle, which counts into it.
    pub throttle: Arc<ThrottleCounters>,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn call(&self, route: Route) {
        self.calls[route.index()].fetch_add(1, Relaxed);
    }
}

/// A cloneable reader of the counters, for whoever reports them.
#[derive(Clone, Default)]
pub struct CacheStatsHandle(pub(crate) Arc<Counters>);

impl CacheStatsHandle {
    pub fn snapshot(&self) -> CacheStats {
        let c = &self.0;
        let broker_calls = Route::ALL
            .iter()
            .zip(&c.calls)
            .map(|(r, n)| (r.as_str().to_string(), n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        CacheStats {
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            coalesced: c.coalesced.load(Relaxed),
            stale_served: c.stale_served.load(Relaxed),
            l2_hits: c.l2_hits.load(Relaxed),
            l2_misses: c.l2_misses.load(Relaxed),
            broker_calls,
            throttle_waits: c.throttle.waits.load(Relaxed),
            throttle_refusals: c.throttle.refusals.load(Relaxed),
            broker_429s: c.throttle.broker_429s.load(Relaxed),
            invalidations: c.invalidations.load(Relaxed),
        }
    }
}
