//! `[idempotency]`: how long a submitted order's key is remembered, so that a
//! retried mutation replays the first outcome instead of placing a second order.

use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    #[serde(rename = "ttl_secs", deserialize_with = "duration::secs")]
    pub ttl: Duration,
    pub max_entries: u64,
    /// How long a concurrent duplicate waits for the first request's result.
    #[serde(rename = "wait_ms", deserialize_with = "duration::millis")]
    pub wait: Duration,
    /// How long an in-flight submit holds its key if its owner never finishes (a
    /// crashed replica, a hung task); longer than `resend_deadline`.
    #[serde(rename = "lease_ms", deserialize_with = "duration::millis")]
    pub lease: Duration,
    /// The most one submit spends resending with its key to learn an unknown outcome.
    #[serde(rename = "resend_deadline_ms", deserialize_with = "duration::millis")]
    pub resend_deadline: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            ttl: Duration::from_secs(86_400),
            max_entries: 1_000_000,
            wait: Duration::from_millis(5_000),
            lease: Duration::from_millis(60_000),
            resend_deadline: Duration::from_millis(15_000),
        }
    }
}

impl IdempotencySettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[("idempotency.ttl_secs", self.ttl)])?;
        positive(&[("idempotency.max_entries", self.max_entries)])?;
        // An owner that outlives its lease shares the key with a newer attempt, and
        // only the broker's own dedup then stands between them and a second order.
        if self.lease <= self.resend_deadline {
            fail(
                "idempotency.lease_ms",
                format!(
                    "must be longer than idempotency.resend_deadline_ms ({}), got {}",
                    self.resend_deadline.as_millis(),
                    self.lease.as_millis()
                ),
            )?;
        }
        positive(&[("idempotency.resend_deadline_ms", self.resend_deadline)])
    }
}
