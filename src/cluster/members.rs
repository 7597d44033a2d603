//! How many replicas are alive: what a replica divides a shared limit by when it
//! has to enforce it alone (Redis unreachable).
//!
//! Every replica writes its instance id into one sorted set (`prefix:replicas`),
//! scored by Redis's clock, once per [`HEARTBEAT`]; in the same script it drops the
//! members not seen for [`EXPIRY`] and counts the rest. The count last read is
//! kept: when Redis goes away, the replicas that were alive a moment ago are the
//! best guess of how many share the load. One sorted set rather than a key per
//! replica, so the count is one `ZCARD`, never a `SCAN`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use redis::Script;

use super::{Redis, RedisError};

/// How often each replica says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A replica not heard from for this long counts as gone (three missed beats).
const EXPIRY: Duration = Duration::from_secs(3);

/// KEYS[1] the set; ARGV instance id, expiry_ms. Returns the live members,
/// this one included.
static BEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - expiry)
redis.call('PEXPIRE', KEYS[1], expiry * 2)
return redis.call('ZCARD', KEYS[1])
",
    )
});

pub(crate) struct Members {
    redis: Arc<Redis>,
    /// `prefix:replicas`.
    key: String,
    /// A random id per process: a restarted replica is a new member, and the old
    /// one ages out.
    id: String,
    live: AtomicU32,
}

impl Members {
    /// Joins the set and keeps beating while the returned handle lives.
    pub(crate) fn join(redis: Arc<Redis>) -> Arc<Members> {
        let members = Arc::new(Members {
            key: redis.key(&["replicas"]),
            id: uuid::Uuid::new_v4().simple().to_string(),
            redis,
            live: AtomicU32::new(1),
        });
        tokio::spawn(beat(Arc::downgrade(&members)));
        members
    }

    /// Replicas alive at the last heartbeat that reached Redis; at least 1.
    pub(crate) fn live(&self) -> u32 {
        self.live.load(Ordering::Relaxed).max(1)
    }

    async fn beat_once(&self) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let mut call = BEAT.key(&self.key);
        call.arg(&self.id).arg(EXPIRY.as_millis() as u64);
        let live: u32 = self
            .redis
            .call_optional("replicas heartbeat", call.invoke_async(&mut conn))
            .await?;
        self.live.store(live, Ordering::Relaxed);
        Ok(())
    }
}

async fn beat(members: Weak<Members>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(members) = members.upgrade() else {
            return;
        };
        if let Err(e) = members.beat_once().await {
            tracing::debug!(error = %e, live = members.live(), "replica heartbeat failed; keeping the last count");
        }
    }
}
