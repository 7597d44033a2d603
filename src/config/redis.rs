//! `[redis]`: what several replicas share (docs/operations.md, "Several replicas on
//! Redis"). Unset `redis.url` keeps the single-process defaults: idempotency, budget,
//! invalidation, rate limits, persisted queries and reads stay in memory.

use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;
use crate::secret::Secret;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`; a `Secret` because it may carry a password.
    pub url: Option<Secret>,
    /// Bound on every Redis call: past it the call counts as Redis being down.
    #[serde(rename = "timeout_ms", deserialize_with = "duration::millis")]
    pub timeout: Duration,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            timeout: Duration::from_millis(500),
            key_prefix: "brokergraph".to_string(),
        }
    }
}

impl RedisSettings {
    pub(crate) fn validate(&self) -> Check {
        if let Some(url) = &self.url {
            let url = url.expose();
            // The URL is never echoed: it may hold the password.
            let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| url.starts_with(s));
            if !scheme_ok || url.parse::<reqwest::Url>().is_err() {
                fail(
                    "redis.url",
                    "must be a URL such as redis://127.0.0.1:6379 (redis://, rediss:// or unix://)",
                )?;
            }
        }
        positive(&[("redis.timeout_ms", self.timeout)])?;
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            fail(
                "redis.key_prefix",
                format!(
                    "must be non-empty without spaces, got {:?}",
                    self.key_prefix
                ),
            )?;
        }
        Ok(())
    }
}
