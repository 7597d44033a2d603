//! Counters of the cache and the throttle, cheap enough to bump on every read (one
//! relaxed atomic add), readable at any time as a `CacheStats` snapshot by the
//! benchmark, tests and a future `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// One broker operation, named like broker-sim's stats keys so the two can be
/// compared line by line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Account,
    Instrument,
    Instruments,
    Positions,
    Order,
    Orders,
    Submit,
    Cancel,
}

const ROUTES: [Route; 8] = [
    Route::Account,
    Route::Instrument,
    Route::Instruments,
    Route::Positions,
    Route::Order,
    Route::Orders,
    Route::Submit,
    Route::Cancel,
];

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Account => "GET /v1/account",
            Route::Instrument => "GET /v1/instruments/{symbol}",
            Route::Instruments => "GET /v1/instruments",
            Route::Positions => "GET /v1/positions",
            Route::Order => "GET /v1/orders/{id}",
            Route::Orders => "GET /v1/orders",
            Route::Submit => "POST /v1/orders",
            Route::Cancel => "DELETE /v1/orders/{id}",
        }
    }
}

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
    /// Calls made to the layer below, by route (`"GET /v1/account"`), reads and writes.
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
    calls: [AtomicU64; ROUTES.len()],
    pub throttle_waits: AtomicU64,
    pub throttle_refusals: AtomicU64,
    pub broker_429s: AtomicU64,
    pub invalidations: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn call(&self, route: Route) {
        let i = ROUTES.iter().position(|r| *r == route).expect("listed");
        self.calls[i].fetch_add(1, Relaxed);
    }
}

/// A cloneable reader of the counters, for whoever reports them.
#[derive(Clone, Default)]
pub struct CacheStatsHandle(pub(crate) Arc<Counters>);

impl CacheStatsHandle {
    pub fn snapshot(&self) -> CacheStats {
        let c = &self.0;
        let broker_calls = ROUTES
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
            broker_calls,
            throttle_waits: c.throttle_waits.load(Relaxed),
            throttle_refusals: c.throttle_refusals.load(Relaxed),
            broker_429s: c.broker_429s.load(Relaxed),
            invalidations: c.invalidations.load(Relaxed),
        }
    }
}
