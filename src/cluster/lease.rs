//! A lease in Redis: which replica holds something only one may hold at a time
//! (the broker allows one stream connection per credential).
//!
//! The holder renews it well before it runs out; a holder that dies or hangs
//! stops renewing and the lease expires, so another replica takes over within the
//! lease's length. Every change is a compare-and-set on the holder's own name, so
//! a replica that lost the lease (it hung past the expiry) can neither renew nor
//! release the new holder's. What the holder writes while holding is fenced the
//! same way (`event_log::EventLog::append` checks the lease in the same script).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::{Redis, RedisError};

/// Takes the lease if free (or already ours), for `ARGV[2]` ms.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
",
    )
});

/// Extends the lease while it is still ours.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// Gives the lease up while it is still ours, so the next holder need not wait
/// for it to expire.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

pub(crate) struct Lease {
    redis: Arc<Redis>,
    key: String,
    /// This replica's name in the lease: unique per process start.
    holder: String,
    length: Duration,
}

impl Lease {
    /// `name` must not be a secret (keys are visible to anyone with access to Redis).
    pub(crate) fn new(redis: Arc<Redis>, name: &str, holder: &str, length: Duration) -> Lease {
        Lease {
            key: redis.key(&["lease", name]),
            redis,
            holder: holder.to_string(),
            length,
        }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn holder(&self) -> &str {
        &self.holder
    }

    /// How often the holder renews: three chances before the lease runs out.
    pub(crate) fn renew_every(&self) -> Duration {
        self.length / 3
    }

    /// Whether this replica holds the lease now.
    pub(crate) async fn acquire(&self) -> Result<bool, RedisError> {
        self.run(&ACQUIRE, "lease acquire").await
    }

    /// Whether this replica still holds it (false: another replica took it over).
    pub(crate) async fn renew(&self) -> Result<bool, RedisError> {
        self.run(&RENEW, "lease renew").await
    }

    pub(crate) async fn release(&self) -> Result<bool, RedisError> {
        self.run(&RELEASE, "lease release").await
    }

    async fn run(&self, script: &Script, what: &'static str) -> Result<bool, RedisError> {
        let mut call = script.key(&self.key);
        call.arg(&self.holder)
            .arg(self.length.as_millis().max(1) as u64);
        let mut conn = self.redis.conn();
        let done: i64 = self.redis.call(what, call.invoke_async(&mut conn)).await?;
        Ok(done == 1)
    }
}
