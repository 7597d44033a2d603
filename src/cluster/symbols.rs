//! The quote symbols every replica's subscribers watch, kept in Redis, so that the
//! one replica holding a credential's stream subscribes the union across replicas,
//! and the broker's symbol limit is counted across them too.
//!
//! Each replica keeps its own set (`<prefix>:quotes:<stream>:want:<replica>`) and
//! an entry in a registry scored by when it lapses; a replica that dies stops
//! refreshing both and drops out of the union after the lease's length. Adding
//! symbols checks the union against the limit in the same script, so two replicas
//! adding at once cannot both squeeze past it. Quotes travel on a pub/sub channel:
//! a quote is worth nothing once a newer one exists, so nothing is kept.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use redis::Script;

use super::{Redis, RedisError};

/// Adds `ARGV[5..]` to this replica's set unless the union would exceed
/// `ARGV[2]`; returns -1 when added, else the size the union would have had.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local union, n = {}, 0
local function add(s)
  if not union[s] then union[s] = true; n = n + 1 end
end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  for _, s in ipairs(redis.call('SMEMBERS', ARGV[3] .. member)) do add(s) end
end
for _, s in ipairs(redis.call('SMEMBERS', KEYS[2])) do add(s) end
for i = 5, #ARGV do add(ARGV[i]) end
if n > tonumber(ARGV[2]) then return n end
redis.call('SADD', KEYS[2], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[4])
return -1
",
    )
});

/// Keeps this replica's set and registry entry alive for another `ARGV[1]` ms.
static REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return 1
",
    )
});

/// The union of the live replicas' sets.
static UNION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local keys = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  table.insert(keys, ARGV[1] .. member)
end
if #keys == 0 then return {} end
return redis.call('SUNION', unpack(keys))
",
    )
});

/// One replica's view of a credential's shared quote symbols.
pub(crate) struct SharedSymbols {
    redis: Arc<Redis>,
    registry: String,
    /// Prefix of every replica's set; the replica's name completes it.
    sets: String,
    mine: String,
    replica: String,
    /// The channel the holder publishes quotes on, and the one that says the
    /// union changed.
    quotes: String,
    changed: String,
    ttl: Duration,
}

impl SharedSymbols {
    /// `name` must not be a secret (keys are visible to anyone with access to Redis).
    pub(crate) fn new(
        redis: Arc<Redis>,
        name: &str,
        replica: &str,
        ttl: Duration,
    ) -> SharedSymbols {
        let sets = format!("{}:", redis.key(&["quotes", name, "want"]));
        SharedSymbols {
            registry: redis.key(&["quotes", name, "replicas"]),
            mine: format!("{sets}{replica}"),
            sets,
            replica: replica.to_string(),
            quotes: redis.key(&["quotes", name, "ticks"]),
            changed: redis.key(&["quotes", name, "changed"]),
            redis,
            ttl,
        }
    }

    /// How often a replica refreshes its set: three chances before it lapses.
    pub(crate) fn refresh_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Adds `symbols` to this replica's set; `Ok(Err(n))`: refused, the union would
    /// have `n` symbols, more than `limit`.
    pub(crate) async fn add(
        &self,
        symbols: &[String],
        limit: usize,
    ) -> Result<Result<(), usize>, RedisError> {
        let mut call = ADD.key(&self.registry);
        call.key(&self.mine)
            .arg(self.ttl.as_millis() as u64)
            .arg(limit)
            .arg(&self.sets)
            .arg(&self.replica)
            .arg(symbols);
        let mut conn = self.redis.conn();
        let n: i64 = self
            .redis
            .call("quote symbols add", call.invoke_async(&mut conn))
            .await?;
        self.announce().await;
        Ok(if n < 0 { Ok(()) } else { Err(n as usize) })
    }

    pub(crate) async fn remove(&self, symbols: &[String]) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SREM");
        cmd.arg(&self.mine).arg(symbols);
        self.redis
            .call("quote symbols remove", async move {
                cmd.query_async::<i64>(&mut conn).await
            })
            .await?;
        self.announce().await;
        Ok(())
    }

    pub(crate) async fn refresh(&self) -> Result<(), RedisError> {
        let mut call = REFRESH.key(&self.registry);
        call.key(&self.mine)
            .arg(self.ttl.as_millis() as u64)
            .arg(&self.replica);
        let mut conn = self.redis.conn();
        self.redis
            .call("quote symbols refresh", call.invoke_async::<i64>(&mut conn))
            .await
            .map(drop)
    }

    /// This replica watches nothing any more.
    pub(crate) async fn leave(&self) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let mut pipe = redis::pipe();
        pipe.del(&self.mine).zrem(&self.registry, &self.replica);
        self.redis
            .call("quote symbols leave", async move {
                pipe.query_async::<()>(&mut conn).await
            })
            .await?;
        self.announce().await;
        Ok(())
    }

    /// What the replicas watch together.
    pub(crate) async fn union(&self) -> Result<Vec<String>, RedisError> {
        let mut call = UNION.key(&self.registry);
        call.arg(&self.sets);
        let mut conn = self.redis.conn();
        self.redis
            .call("quote symbols union", call.invoke_async(&mut conn))
            .await
    }

    /// Sends a quote to every replica.
    pub(crate) async fn publish(&self, payload: &str) -> Result<(), RedisError> {
        self.send(&self.quotes, payload).await
    }

    /// The quotes the holder publishes, as they come.
    pub(crate) async fn quotes(&self) -> Result<BoxStream<'static, String>, RedisError> {
        self.subscribe(&self.quotes).await
    }

    /// A message each time some replica's set changed.
    pub(crate) async fn changes(&self) -> Result<BoxStream<'static, String>, RedisError> {
        self.subscribe(&self.changed).await
    }

    /// Tells the holder at once rather than at its next poll; a lost notice only
    /// delays the change until then.
    async fn announce(&self) {
        let _ = self.send(&self.changed, "").await;
    }

    async fn send(&self, channel: &str, payload: &str) -> Result<(), RedisError> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        self.redis
            .call_optional(
                "publish",
                async move { cmd.query_async::<i64>(&mut conn).await },
            )
            .await
            .map(drop)
    }

    async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, String>, RedisError> {
        let mut pubsub = self.redis.pubsub().await?;
        let channel = channel.to_string();
        self.redis
            .call("subscribe", pubsub.subscribe(&channel))
            .await?;
        Ok(pubsub
            .into_on_message()
            .filter_map(|msg| async move { msg.get_payload::<String>().ok() })
            .boxed())
    }
}
