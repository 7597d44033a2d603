//! `[rate_limit]`: per-gateway-key token buckets, so that one tool cannot spend the
//! broker budget of all.

use std::collections::HashMap;

use serde::Deserialize;

use super::check::{fail, Check};
use super::keys::GatewayKeyConfig;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Requests per minute each key may make; 0 turns the limit off.
    pub per_minute: u32,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
    /// Per key id: its own requests per minute (TOML only: `[rate_limit.per_key]`).
    pub per_key: HashMap<String, u32>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            per_minute: 600,
            burst: 60,
            per_key: HashMap::new(),
        }
    }
}

impl RateLimitSettings {
    /// `keys` already validated (ids trimmed), so that a per-key limit is matched
    /// against the ids that authentication will see.
    pub(crate) fn validate(&self, keys: &[GatewayKeyConfig]) -> Check {
        if self.per_minute > 0 && self.burst == 0 {
            fail(
                "rate_limit.burst",
                "must be greater than 0 when rate_limit.per_minute is set",
            )?;
        }
        // A typo in a key id would otherwise leave that key on the default limit.
        for id in self.per_key.keys() {
            if !keys.iter().any(|k| &k.id == id) {
                fail(
                    format!("rate_limit.per_key.{id}"),
                    "names no configured [[keys]] id",
                )?;
            }
        }
        Ok(())
    }
}
