//! State several replicas share through Redis: one `Redis` handle per
//! gateway, used by the idempotency store, the shared broker budget and the
//! cross-replica invalidation. Absent (no `redis.url`) everything stays in-process.
//!
//! Every call is bounded by `redis.timeout_ms`, and every outcome is recorded, so
//! `/readyz` can say why Redis counts as down. A call that fails is never retried
//! here: the callers decide (a submit refuses, a read falls back to local state).

pub(crate) mod epoch;
pub(crate) mod event_log;
pub(crate) mod lease;
pub(crate) mod members;
pub(crate) mod symbols;

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisSettings;

/// A Redis call that did not give an answer. `Display` never holds the URL (it may
/// carry a password): only what failed and how.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisError {
    #[error("redis did not answer {what} within {ms} ms")]
    Timeout { what: &'static str, ms: u64 },
    #[error("redis {what} failed: {reason}")]
    Failed { what: &'static str, reason: String },
}

/// The last outcome of any Redis call, for `/readyz`.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    pub ok: bool,
    /// Why the last failed call failed (`None` after a success).
    pub reason: Option<String>,
    pub since: Instant,
    /// When the last call finished, so optional calls can skip a Redis that was
    /// down a moment ago instead of each waiting out the timeout.
    pub checked: Instant,
}

/// How long optional calls (the epoch check, the shared budget) skip Redis after a
/// failure: reads would otherwise each pay the timeout while Redis hangs.
const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// One gateway's connection to the shared Redis.
pub struct Redis {
    /// Multiplexed and reconnecting: clones share one TCP connection, and after
    /// Redis restarts the next call reconnects on its own.
    conn: ConnectionManager,
    /// For connections of their own (`Self::dedicated`).
    client: redis::Client,
    timeout: Duration,
    /// `redis.key_prefix`; every key and channel starts with it and a colon.
    prefix: String,
    health: Mutex<Health>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Builds the handle without connecting: the gateway starts (and serves reads)
    /// while Redis is down, and connects on first use.
    pub fn open(settings: &RedisSettings) -> Result<Option<Redis>, RedisError> {
        let Some(url) = &settings.url else {
            return Ok(None);
        };
        let failed = |e: redis::RedisError| RedisError::Failed {
            what: "connect",
            reason: format!("{:?}", e.kind()),
        };
        let client = redis::Client::open(url.expose()).map_err(failed)?;
        let timeout = settings.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(failed)?;
        Ok(Some(Redis {
            conn,
            client,
            timeout,
            prefix: settings.key_prefix.clone(),
            health: Mutex::new(Health {
                ok: true,
                reason: None,
                since: Instant::now(),
                checked: Instant::now(),
            }),
        }))
    }

    /// `prefix:part:part...`; parts must not be secrets (keys are visible to anyone
    /// with access to Redis).
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// A clone of the multiplexed connection, for one call via [`Self::call`].
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A connection of its own, for a blocking read (`XREAD BLOCK`): on the shared
    /// multiplexed connection it would hold up every other caller's command until
    /// it returned. Bounded by the timeout; the caller bounds the read itself.
    pub(crate) async fn dedicated(&self) -> Result<redis::aio::MultiplexedConnection, RedisError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None);
        let client = self.client.clone();
        self.call("connect", async move {
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        })
        .await
    }

    /// A pub/sub connection (each holds a connection of its own).
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, RedisError> {
        let client = self.client.clone();
        self.call("connect", async move { client.get_async_pubsub().await })
            .await
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one Redis call with the timeout, and records how it went.
    pub async fn call<T, F>(&self, what: &'static str, call: F) -> Result<T, RedisError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(RedisError::Failed {
                what,
                reason: describe(&e),
            }),
            Err(_) => Err(RedisError::Timeout {
                what,
                ms: self.timeout.as_millis() as u64,
            }),
        };
        self.record(result.as_ref().err());
        result
    }

    fn record(&self, error: Option<&RedisError>) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let ok = error.is_none();
        if ok != health.ok {
            health.since = Instant::now();
            match error {
                Some(e) => tracing::warn!(error = %e, "redis is unreachable"),
                None => tracing::info!("redis is reachable again"),
            }
        }
        health.ok = ok;
        health.reason = error.map(ToString::to_string);
        health.checked = Instant::now();
    }

    /// [`Self::call`] for calls the caller can do without (it has a local fallback):
    /// fails at once while Redis failed within the last second, so one probe per
    /// second pays the timeout rather than every request.
    pub async fn call_optional<T, F>(&self, what: &'static str, call: F) -> Result<T, RedisError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let health = self.health();
        if !health.ok && health.checked.elapsed() < SKIP_AFTER_FAILURE {
            return Err(RedisError::Failed {
                what,
                reason: "skipped: redis failed less than a second ago".to_string(),
            });
        }
        self.call(what, call).await
    }

    pub(crate) fn health(&self) -> Health {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.conn();
        self.call("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// Warns when Redis may evict keys: an evicted idempotency record is a key that
    /// can place a second order. Managed Redis often forbids `CONFIG`; then the
    /// operator's word (docs/operations.md) is all there is.
    pub async fn check_eviction_policy(&self) {
        let mut conn = self.conn();
        let policy = self
            .call("CONFIG GET", async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory-policy")
                    .query_async::<Vec<String>>(&mut conn)
                    .await
            })
            .await;
        match policy.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => {}
            Ok([_, policy]) => tracing::warn!(
                policy = %policy,
                "redis may evict keys (maxmemory-policy is not noeviction): an evicted idempotency key could let a retry place a second order"
            ),
            _ => {
                tracing::info!("could not read redis maxmemory-policy; make sure it is noeviction")
            }
        }
    }
}

/// The kind and the server's message, never the connection info.
fn describe(e: &redis::RedisError) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_string()
    } else {
        match e.detail() {
            Some(detail) => format!("{:?}: {detail}", e.kind()),
            None => format!("{:?}", e.kind()),
        }
    }
}
