//! The broker budget shared by every replica: the broker counts calls per
//! API key, not per process, so the window's count lives in Redis and every
//! replica takes from it in one atomic script.
//!
//! The rules are those of `budget::Budget` (the same caps per priority, so the
//! mutation reserve is kept across all replicas together); each replica still
//! learns the limit and window from the broker's headers locally and passes the
//! caps in. The clock is Redis's (`TIME`), one clock for all replicas.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use crate::cluster::{Redis, RedisError};

/// KEYS[1] the budget hash; ARGV window_ms, share, burst. Returns 0 when a call
/// was taken, else the milliseconds to wait before asking again. A cap is
/// `burst` at the window's start rising to `share` at its end (refreshes are
/// paced); fixed caps pass `share == burst`.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local share = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'start', 'end', 'used', 'blocked')
local start = tonumber(b[1])
local wend = tonumber(b[2])
local used = tonumber(b[3]) or 0
local blocked = tonumber(b[4]) or 0
if blocked > now then return blocked - now end
if (not wend) or (not start) or now >= wend then
  start = now; wend = now + window; used = 0
end
local span = wend - start
if span < 1 then span = 1 end
local elapsed = (now - start) / span
if elapsed > 1 then elapsed = 1 end
local cap = burst + math.ceil((share - burst) * elapsed)
if cap > share then cap = share end
if used < cap then
  redis.call('HSET', KEYS[1], 'start', start, 'end', wend, 'used', used + 1)
  redis.call('PEXPIREAT', KEYS[1], wend + span)
  return 0
end
if share > burst and used < share then
  local at = start + math.floor((used - burst) * span / (share - burst)) + 1
  if at > wend then at = wend end
  if at > now then return at - now end
  return 1
end
if wend > now then return wend - now end
return 1
",
    )
});

/// KEYS[1]; ARGV spent, reset_in_ms, window_ms. Adopts the broker's word on the
/// current window: its end, and at least as many calls spent as it says.
static OBSERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spent = tonumber(ARGV[1])
local wend = now + tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'end', 'used')
local old_end = tonumber(b[1])
local used = tonumber(b[2]) or 0
-- The same window (its end within the broker's 1 s rounding): keep our count if it
-- is higher, it includes calls still in flight. A later end is a new window.
if not (old_end and old_end > now and wend <= old_end + 1000) then used = 0 end
if spent > used then used = spent end
local start = wend - window
if start > now then start = now end
redis.call('HSET', KEYS[1], 'start', start, 'end', wend, 'used', used)
redis.call('PEXPIREAT', KEYS[1], wend + window)
return used
",
    )
});

/// KEYS[1]; ARGV block_ms, spend_all (1 when the broker gave no Retry-After).
static BLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'blocked', 'end')
local blocked = tonumber(b[1]) or 0
if ARGV[2] == '1' then
  local wend = tonumber(b[2]) or now
  if wend > until_ms then until_ms = wend end
end
if until_ms > blocked then redis.call('HSET', KEYS[1], 'blocked', until_ms) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + 120000)
return 0
",
    )
});

pub(crate) struct ClusterBudget {
    redis: Arc<Redis>,
    /// `prefix:budget:<account>`: one per broker key, whichever replica asks.
    key: String,
}

impl ClusterBudget {
    pub(crate) fn new(redis: Arc<Redis>, account: &str) -> ClusterBudget {
        ClusterBudget {
            key: redis.key(&["budget", account]),
            redis,
        }
    }

    /// `None`: one call taken. `Some(wait)`: ask again after `wait`.
    pub(crate) async fn take(
        &self,
        window: Duration,
        share: u32,
        burst: u32,
    ) -> Result<Option<Duration>, RedisError> {
        let mut conn = self.redis.conn();
        let mut call = TAKE.key(&self.key);
        call.arg(window.as_millis().max(1) as u64)
            .arg(share)
            .arg(burst);
        let wait_ms: u64 = self
            .redis
            .call_optional("budget take", call.invoke_async(&mut conn))
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    pub(crate) async fn observe(
        &self,
        spent: u32,
        reset_in: Duration,
        window: Duration,
    ) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let mut call = OBSERVE.key(&self.key);
        call.arg(spent)
            .arg(reset_in.as_millis() as u64)
            .arg(window.as_millis().max(1) as u64);
        self.redis
            .call_optional("budget observe", call.invoke_async::<u64>(&mut conn))
            .await
            .map(drop)
    }

    /// A 429: nobody calls before `retry_after` (or, without one, the window's end).
    pub(crate) async fn block(&self, retry_after: Option<Duration>) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let mut call = BLOCK.key(&self.key);
        let (ms, all) = match retry_after {
            Some(after) => (after.as_millis() as u64, "0"),
            None => (1000, "1"),
        };
        call.arg(ms).arg(all);
        self.redis
            .call_optional("budget block", call.invoke_async::<u64>(&mut conn))
            .await
            .map(drop)
    }
}
