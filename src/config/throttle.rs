//! `[throttle]`: how the broker's rate-limit budget is spent, so that its 429 is
//! practically never reached (docs/cache.md).

use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;

/// The broker's rate-limit budget as assumed before its first `X-RateLimit-*`
/// headers arrive, and how the budget is shared between reads and mutations.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Requests per window, until the broker's headers say otherwise.
    pub requests: u32,
    /// Window length, until the broker's headers say otherwise.
    #[serde(rename = "window_secs", deserialize_with = "duration::secs")]
    pub window: Duration,
    /// Share of each window kept for order mutations and the reads that confirm them.
    pub reserve_percent: u32,
    /// How long a read with nothing cached waits for budget before RATE_LIMITED.
    #[serde(rename = "max_read_wait_ms", deserialize_with = "duration::millis")]
    pub max_read_wait: Duration,
    /// How long a submit or cancel waits for budget before RATE_LIMITED.
    #[serde(rename = "max_mutation_wait_ms", deserialize_with = "duration::millis")]
    pub max_mutation_wait: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            requests: 200,
            window: Duration::from_secs(60),
            reserve_percent: 20,
            max_read_wait: Duration::from_millis(2_000),
            max_mutation_wait: Duration::from_millis(10_000),
        }
    }
}

impl ThrottleSettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[("throttle.window_secs", self.window)])?;
        if self.requests < 2 {
            fail(
                "throttle.requests",
                format!(
                    "must be at least 2 (one for reads, one for mutations), got {}",
                    self.requests
                ),
            )?;
        }
        if self.reserve_percent > 90 {
            fail(
                "throttle.reserve_percent",
                format!(
                    "must be at most 90 so that reads keep a budget, got {}",
                    self.reserve_percent
                ),
            )?;
        }
        Ok(())
    }
}
