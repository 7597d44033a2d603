//! One rate limit per gateway key across every replica: the limit protects the
//! broker budget, which all replicas share, so N replicas behind a round-robin
//! balancer must not give a key N times its rate.
//!
//! GCRA (the generic cell rate algorithm) in one Lua script: per key, Redis holds
//! only the "theoretical arrival time" of the next request, so a take is one round
//! trip and one small string, and it allows exactly what the local token bucket
//! allows (`burst` at once after idle, then `per_sec`). The clock is Redis's
//! (`TIME`), one clock for all replicas.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use crate::cluster::{Redis, RedisError};

/// KEYS[1] the key's arrival time (ms, fractional); ARGV interval_ms, burst.
/// Returns {1, tokens left} when the request may go, else {0, ms to wait}.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local limit = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local ahead = next_tat - now
if ahead > limit then
  return {0, math.ceil(ahead - limit)}
end
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil(ahead) + 1)
return {1, math.floor((limit - ahead) / interval)}
",
    )
});

pub(crate) struct SharedLimit {
    redis: Arc<Redis>,
}

impl SharedLimit {
    pub(crate) fn new(redis: Arc<Redis>) -> SharedLimit {
        SharedLimit { redis }
    }

    /// One request of `key_id` at `per_sec` with `burst`: `Ok(tokens left)` or
    /// `Err(wait)`. The outer error is Redis not answering.
    pub(crate) async fn take(
        &self,
        key_id: &str,
        per_sec: f64,
        burst: f64,
    ) -> Result<Result<u32, Duration>, RedisError> {
        // The key id names the key in logs and config; the key itself never leaves
        // the Authorization header.
        let key = self.redis.key(&["ratelimit", key_id]);
        let mut conn = self.redis.conn();
        let mut call = TAKE.key(key);
        call.arg(1000.0 / per_sec).arg(burst);
        let (allowed, n): (u8, u64) = self
            .redis
            .call_optional("rate limit take", call.invoke_async(&mut conn))
            .await?;
        Ok(match allowed {
            1 => Ok(n.min(u64::from(u32::MAX)) as u32),
            _ => Err(Duration::from_millis(n.max(1))),
        })
    }
}
