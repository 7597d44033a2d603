//! Cross-replica invalidation by keyspace versioning.
//!
//! One counter per broker account in Redis, bumped by every replica after a submit
//! or cancel (before its answer goes out), and read by every replica at the start
//! of each GraphQL request. A replica that sees a higher number than it last saw
//! drops its mutable cached reads before answering. A client that submits on
//! replica A and then queries replica B therefore always sees its order: A's bump
//! happened before A answered, and B reads the counter after the query arrived.
//!
//! Pub/sub would save the read per request, but a message races the client's next
//! request; versioning cannot. The read is one `GET` on the multiplexed connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Redis, RedisError};

pub(crate) struct ClusterEpoch {
    redis: Arc<Redis>,
    /// `prefix:epoch:<account>`; the account is a hash, not a secret.
    key: String,
    /// The highest counter this replica has acted on. Starts at 0, so the first
    /// request after a start (or a Redis flush, which resets the counter) compares
    /// against whatever is there; a counter that went backwards is treated as new.
    seen: AtomicU64,
}

impl ClusterEpoch {
    pub(crate) fn new(redis: Arc<Redis>, account: &str) -> ClusterEpoch {
        ClusterEpoch {
            key: redis.key(&["epoch", account]),
            redis,
            seen: AtomicU64::new(0),
        }
    }

    /// Tells the other replicas that the account changed. Our own caches were
    /// already invalidated by the caller; `seen` is deliberately not advanced, so
    /// this replica also re-invalidates once, covering reads that raced the bump.
    pub(crate) async fn bump(&self) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let key = self.key.clone();
        self.redis
            .call("INCR epoch", async move {
                redis::cmd("INCR")
                    .arg(&key)
                    .query_async::<u64>(&mut conn)
                    .await
            })
            .await
            .map(drop)
    }

    /// Runs `invalidate` (drop the mutable cached reads) if another replica changed
    /// the account since we last looked. `seen` advances only after `invalidate`
    /// ran, so a request racing this one cannot skip it and read the old cache.
    pub(crate) async fn sync(&self, invalidate: impl FnOnce()) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let key = self.key.clone();
        let now = self
            .redis
            .call_optional("GET epoch", async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<u64>>(&mut conn)
                    .await
            })
            .await?
            .unwrap_or(0);
        if now != self.seen.load(Ordering::Acquire) {
            invalidate();
            self.seen.store(now, Ordering::Release);
        }
        Ok(())
    }
}
