//! `[cache]`: how long broker reads are reused and how much memory the read cache
//! may take (docs/cache.md).

use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;

/// Freshness and size of the read cache, per resource: an account or a page of
/// positions goes stale in seconds, a filled order never does.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    #[serde(rename = "account_ttl_ms", deserialize_with = "duration::millis")]
    pub account_ttl: Duration,
    #[serde(rename = "positions_ttl_ms", deserialize_with = "duration::millis")]
    pub positions_ttl: Duration,
    /// Pages of `orders` lists.
    #[serde(rename = "orders_ttl_ms", deserialize_with = "duration::millis")]
    pub orders_ttl: Duration,
    /// One order read by id while it can still change.
    #[serde(rename = "open_order_ttl_ms", deserialize_with = "duration::millis")]
    pub open_order_ttl: Duration,
    /// One filled, canceled, rejected or expired order: it cannot change any more.
    #[serde(
        rename = "terminal_order_ttl_ms",
        deserialize_with = "duration::millis"
    )]
    pub terminal_order_ttl: Duration,
    /// One instrument and pages of the instrument list.
    #[serde(rename = "instruments_ttl_ms", deserialize_with = "duration::millis")]
    pub instruments_ttl: Duration,
    /// A quote snapshot read over REST (a symbol streamed live is served from the
    /// stream instead).
    #[serde(rename = "quote_ttl_ms", deserialize_with = "duration::millis")]
    pub quote_ttl: Duration,
    /// How old a value may be and still be served when the broker cannot be asked
    /// (429, 5xx, timeout, budget spent).
    #[serde(rename = "stale_ttl_ms", deserialize_with = "duration::millis")]
    pub stale_ttl: Duration,
    /// Most entries per resource cache (eight of them).
    pub max_entries: u64,
    /// Most estimated bytes of values per resource cache (eight of them).
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            account_ttl: Duration::from_millis(2_000),
            positions_ttl: Duration::from_millis(2_000),
            orders_ttl: Duration::from_millis(1_000),
            open_order_ttl: Duration::from_millis(1_000),
            terminal_order_ttl: Duration::from_millis(3_600_000),
            instruments_ttl: Duration::from_millis(300_000),
            quote_ttl: Duration::from_millis(1_000),
            stale_ttl: Duration::from_millis(60_000),
            max_entries: 10_000,
            max_bytes: 32 * 1024 * 1024,
        }
    }
}

impl CacheSettings {
    /// Below this a single page of instruments would not fit, and the cache would
    /// silently cache nothing.
    const MIN_BYTES: u64 = 1024 * 1024;

    pub(crate) fn validate(&self) -> Check {
        positive(&[
            ("cache.account_ttl_ms", self.account_ttl),
            ("cache.positions_ttl_ms", self.positions_ttl),
            ("cache.orders_ttl_ms", self.orders_ttl),
            ("cache.open_order_ttl_ms", self.open_order_ttl),
            ("cache.terminal_order_ttl_ms", self.terminal_order_ttl),
            ("cache.instruments_ttl_ms", self.instruments_ttl),
            ("cache.quote_ttl_ms", self.quote_ttl),
            ("cache.stale_ttl_ms", self.stale_ttl),
        ])?;
        positive(&[("cache.max_entries", self.max_entries)])?;
        if self.max_bytes < Self::MIN_BYTES {
            fail(
                "cache.max_bytes",
                format!(
                    "must be at least {} (1 MiB), got {}",
                    Self::MIN_BYTES,
                    self.max_bytes
                ),
            )?;
        }
        Ok(())
    }
}
