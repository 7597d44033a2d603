//! `[redis]`: what several replicas share (issue 10). Unset `redis.url` keeps the
//! single-process defaults: idempotency, budget and invalidation stay in memory.

use serde::Deserialize;
use toml::{Table, Value};

use super::validate::{fail, Check};
use super::Config;
use crate::secret::Secret;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]`; a `Secret` because it may carry a password.
    pub url: Option<Secret>,
    /// Bound on every Redis call: past it the call counts as Redis being down.
    pub timeout_ms: u64,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            timeout_ms: 500,
            key_prefix: "brokergraph".to_string(),
        }
    }
}

pub(super) fn validate(config: &Config) -> Check {
    let r = &config.redis;
    if let Some(url) = &r.url {
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
    if r.timeout_ms == 0 {
        fail("redis.timeout_ms", "must be greater than 0, got 0")?;
    }
    if r.key_prefix.is_empty() || r.key_prefix.contains(char::is_whitespace) {
        fail(
            "redis.key_prefix",
            format!("must be non-empty without spaces, got {:?}", r.key_prefix),
        )?;
    }
    let i = &config.idempotency;
    if i.lease_ms <= i.resend_deadline_ms {
        fail(
            "idempotency.lease_ms",
            format!(
                "must be longer than idempotency.resend_deadline_ms ({}), got {}",
                i.resend_deadline_ms, i.lease_ms
            ),
        )?;
    }
    if i.resend_deadline_ms == 0 {
        fail(
            "idempotency.resend_deadline_ms",
            "must be greater than 0, got 0",
        )?;
    }
    Ok(())
}

pub(super) fn render(config: &Config, root: &mut Table) {
    let r = &config.redis;
    let mut redis = Table::new();
    if r.url.is_some() {
        redis.insert("url".into(), "[redacted]".into());
    }
    redis.insert(
        "timeout_ms".into(),
        Value::Integer(i64::try_from(r.timeout_ms).unwrap_or(i64::MAX)),
    );
    redis.insert("key_prefix".into(), r.key_prefix.clone().into());
    root.insert("redis".into(), redis.into());
}
