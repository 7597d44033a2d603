//! `[cache]` and `[throttle]`: how long broker reads are reused, how much memory the
//! cache may take, and how the broker's rate-limit budget is spent (DESIGN.md §7).
//!
//! Kept apart from `mod.rs` because these two sections belong to one concern, the
//! cache layer (`crate::cache`, `crate::throttle`), and are validated together.

use serde::Deserialize;

use super::validate::{fail, Check};

/// Freshness and size of the read cache. Durations are milliseconds so that tests
/// (and very fast brokers) can use sub-second values.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    pub account_ttl_ms: u64,
    pub positions_ttl_ms: u64,
    /// Pages of `orders` lists.
    pub orders_ttl_ms: u64,
    /// One order read by id while it can still change.
    pub open_order_ttl_ms: u64,
    /// One filled, canceled, rejected or expired order: it cannot change any more.
    pub terminal_order_ttl_ms: u64,
    /// One instrument and pages of the instrument list.
    pub instruments_ttl_ms: u64,
    /// How old a value may be and still be served when the broker cannot be asked
    /// (429, 5xx, timeout, budget spent).
    pub stale_ttl_ms: u64,
    /// Most entries per resource cache (six of them).
    pub max_entries: u64,
    /// Most estimated bytes of values per resource cache (six of them).
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            account_ttl_ms: 2_000,
            positions_ttl_ms: 2_000,
            orders_ttl_ms: 1_000,
            open_order_ttl_ms: 1_000,
            terminal_order_ttl_ms: 3_600_000,
            instruments_ttl_ms: 300_000,
            stale_ttl_ms: 60_000,
            max_entries: 10_000,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The broker's rate-limit budget as assumed before its first `X-RateLimit-*`
/// headers arrive, and how the budget is shared between reads and mutations.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Requests per window, until the broker's headers say otherwise.
    pub requests: u32,
    /// Window length in seconds, until the broker's headers say otherwise.
    pub window_secs: u64,
    /// Share of each window kept for order mutations and the reads that confirm them.
    pub reserve_percent: u32,
    /// How long a read with nothing cached waits for budget before RATE_LIMITED.
    pub max_read_wait_ms: u64,
    /// How long a submit or cancel waits for budget before RATE_LIMITED.
    pub max_mutation_wait_ms: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            requests: 200,
            window_secs: 60,
            reserve_percent: 20,
            max_read_wait_ms: 2_000,
            max_mutation_wait_ms: 10_000,
        }
    }
}

pub(super) fn validate(cache: &CacheSettings, throttle: &ThrottleSettings) -> Check {
    for (key, value) in [
        ("cache.account_ttl_ms", cache.account_ttl_ms),
        ("cache.positions_ttl_ms", cache.positions_ttl_ms),
        ("cache.orders_ttl_ms", cache.orders_ttl_ms),
        ("cache.open_order_ttl_ms", cache.open_order_ttl_ms),
        ("cache.terminal_order_ttl_ms", cache.terminal_order_ttl_ms),
        ("cache.instruments_ttl_ms", cache.instruments_ttl_ms),
        ("cache.stale_ttl_ms", cache.stale_ttl_ms),
        ("cache.max_entries", cache.max_entries),
        ("throttle.window_secs", throttle.window_secs),
    ] {
        if value == 0 {
            fail(key, "must be greater than 0, got 0")?;
        }
    }
    // Below this a single page of instruments would not fit, and the cache would
    // silently cache nothing.
    const MIN_BYTES: u64 = 1024 * 1024;
    if cache.max_bytes < MIN_BYTES {
        fail(
            "cache.max_bytes",
            format!(
                "must be at least {MIN_BYTES} (1 MiB), got {}",
                cache.max_bytes
            ),
        )?;
    }
    if throttle.requests < 2 {
        fail(
            "throttle.requests",
            format!(
                "must be at least 2 (one for reads, one for mutations), got {}",
                throttle.requests
            ),
        )?;
    }
    if throttle.reserve_percent > 90 {
        fail(
            "throttle.reserve_percent",
            format!(
                "must be at most 90 so that reads keep a budget, got {}",
                throttle.reserve_percent
            ),
        )?;
    }
    Ok(())
}
