//! The L2 read cache replicas share in Redis: a replica's miss reads it before
//! asking the broker, and a broker read writes it, so N replicas refresh each value
//! once, not N times.
//!
//! Only reads that are the same for every caller of an account (the account,
//! positions, order lists, orders by id, instruments), as the serialized domain
//! values (never wire types; the account is the cache's hash of URL and key, never
//! a secret). Each value is a hash `prefix:l2:<account>:<resource>:<query hash>`:
//!
//! - `at`, when the broker answered, on Redis's clock: a value is fresh for its
//!   resource's TTL from then, on every replica alike, and Redis drops it then;
//! - `epoch`, the account's `cluster::epoch` counter when the read started: a
//!   submit or cancel on any replica bumps it before answering, and a value with
//!   an older epoch is never served (a read that raced a mutation is not stored);
//! - `value`, the JSON.
//!
//! One replica refreshes a key at a time: a miss takes a short lock (`SET NX PX`)
//! in the same round trip as its look; the others poll the value until it is
//! there or the lock is gone, at most [`WAIT`], and then ask the broker
//! themselves. Redis unreachable: no L2, each replica its own cache as before.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use redis::Script;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cluster::{Redis, RedisError};

/// How long a refresh holds its key's lock (a broker read takes milliseconds).
const LOCK: Duration = Duration::from_secs(1);
/// The longest a reader waits for another replica's refresh.
const WAIT: Duration = Duration::from_secs(1);
/// How often a waiting reader looks again.
const POLL: Duration = Duration::from_millis(20);

/// KEYS value, epoch counter, lock; ARGV bound ('1': epoch-stamped), token,
/// lock_ms.
/// Returns {1, epoch, age_ms, value} for a value of the current epoch, else
/// {2, epoch, 0, ''} with the lock taken, or {3, epoch, 0, ''} when another
/// replica holds it.
static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = 0
if ARGV[1] == '1' then epoch = tonumber(redis.call('GET', KEYS[2]) or '0') end
local v = redis.call('HMGET', KEYS[1], 'epoch', 'at', 'value')
if v[3] and tonumber(v[1]) == epoch then
  local age = now - tonumber(v[2])
  if age < 0 then age = 0 end
  return {1, epoch, age, v[3]}
end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {2, epoch, 0, ''}
end
return {3, epoch, 0, ''}
",
    )
});

/// KEYS value, epoch counter, lock; ARGV bound, epoch seen, age_ms, ttl_ms, value
/// ('' for none), token ('' for none). Stores unless the epoch moved since the
/// read started, then releases the lock if it is still ours.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = 0
if ARGV[1] == '1' then epoch = tonumber(redis.call('GET', KEYS[2]) or '0') end
local age = tonumber(ARGV[3])
local left = tonumber(ARGV[4]) - age
local stored = 0
if ARGV[5] ~= '' and epoch == tonumber(ARGV[2]) and left > 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'at', now - age, 'value', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], left)
  stored = 1
end
if ARGV[6] ~= '' and redis.call('GET', KEYS[3]) == ARGV[6] then
  redis.call('DEL', KEYS[3])
end
return stored
",
    )
});

/// How one resource goes to and from L2.
pub(super) struct Codec<Q, V> {
    /// The resource's part of the key (`account`, `orders`...).
    pub resource: &'static str,
    /// Stamped with the account's epoch: whatever a mutation can change.
    pub bound: bool,
    key: fn(&Q) -> String,
    encode: fn(&V) -> Option<String>,
    decode: fn(&str) -> Option<V>,
}

impl<Q: Serialize, V: Serialize + DeserializeOwned> Codec<Q, V> {
    pub(super) fn new(resource: &'static str, bound: bool) -> Codec<Q, V> {
        Codec {
            resource,
            bound,
            key: |q| {
                // Cursors and symbols as they come: hashed, so any text makes a key.
                let json = serde_json::to_string(q).unwrap_or_default();
                hex::encode(&Sha256::digest(json.as_bytes())[..16])
            },
            encode: |v| serde_json::to_string(v).ok(),
            decode: |s| serde_json::from_str(s).ok(),
        }
    }
}

/// What a miss found in L2.
pub(super) enum Found<V> {
    /// Another replica's broker read, `age` old.
    Value(V, Duration),
    /// Nothing usable: ask the broker, then [`L2::store`] with this.
    Fetch(Claim),
}

/// The right to store one key's value: the epoch the read started in, and the
/// lock's token when this replica holds it.
pub(super) struct Claim {
    value_key: String,
    lock_key: String,
    bound: bool,
    epoch: u64,
    token: Option<String>,
}

pub(crate) struct L2 {
    redis: Arc<Redis>,
    /// `prefix:l2:<account>`.
    prefix: String,
    /// The counter `cluster::epoch` keeps for the account.
    epoch_key: String,
}

impl L2 {
    pub(crate) fn new(redis: Arc<Redis>, account: &str) -> L2 {
        L2 {
            prefix: redis.key(&["l2", account]),
            epoch_key: redis.key(&["epoch", account]),
            redis,
        }
    }

    /// The value of `query` if a replica read it within `ttl` of it (in this
    /// epoch), waiting a little for a refresh another replica is making; else the
    /// claim to fetch and store it. `Err`: Redis did not answer, no L2 this time.
    pub(super) async fn find<Q, V>(
        &self,
        codec: &Codec<Q, V>,
        query: &Q,
        ttl: impl Fn(&V) -> Duration,
    ) -> Result<Found<V>, RedisError> {
        let key = format!("{}:{}:{}", self.prefix, codec.resource, (codec.key)(query));
        let lock_key = format!("{key}:lock");
        let token = uuid::Uuid::new_v4().simple().to_string();
        let started = Instant::now();
        loop {
            let mut conn = self.redis.conn();
            let mut call = LOOKUP.key(&key);
            call.key(&self.epoch_key)
                .key(&lock_key)
                .arg(if codec.bound { "1" } else { "0" })
                .arg(&token)
                .arg(LOCK.as_millis() as u64);
            let (kind, epoch, age, value): (u8, u64, u64, String) = self
                .redis
                .call_optional("l2 lookup", call.invoke_async(&mut conn))
                .await?;
            let claim = |token: Option<String>| Claim {
                value_key: key.clone(),
                lock_key: lock_key.clone(),
                bound: codec.bound,
                epoch,
                token,
            };
            match kind {
                1 => {
                    let age = Duration::from_millis(age);
                    match (codec.decode)(&value) {
                        Some(v) if age < ttl(&v) => return Ok(Found::Value(v, age)),
                        // Written by another version, or fresh for a shorter time
                        // here: ours replaces it.
                        _ => return Ok(Found::Fetch(claim(None))),
                    }
                }
                2 => return Ok(Found::Fetch(claim(Some(token)))),
                _ if started.elapsed() >= WAIT => return Ok(Found::Fetch(claim(None))),
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// After the broker call `claim` was for: stores its value (`None` when the
    /// call failed), `age` old, fresh for `ttl`, and frees the lock.
    pub(super) async fn store<Q, V>(
        &self,
        codec: &Codec<Q, V>,
        claim: Claim,
        value: Option<&V>,
        age: Duration,
        ttl: Duration,
    ) {
        let mut conn = self.redis.conn();
        let mut call = STORE.key(&claim.value_key);
        call.key(&self.epoch_key)
            .key(&claim.lock_key)
            .arg(if claim.bound { "1" } else { "0" })
            .arg(claim.epoch)
            .arg(age.as_millis() as u64)
            .arg(ttl.as_millis() as u64)
            .arg(value.and_then(codec.encode).unwrap_or_default())
            .arg(claim.token.unwrap_or_default());
        if let Err(e) = self
            .redis
            .call_optional("l2 store", call.invoke_async::<u8>(&mut conn))
            .await
        {
            tracing::debug!(error = %e, resource = codec.resource, "l2: value not shared");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Page, PageRequest, Position};

    fn page(cursor: Option<&str>, limit: u32) -> PageRequest {
        PageRequest {
            cursor: cursor.map(str::to_string),
            limit,
        }
    }

    #[test]
    fn keys_tell_apart_every_page_and_are_the_same_on_every_replica() {
        let codec: Codec<PageRequest, Page<Position>> = Codec::new("positions", true);
        let key = |q: &PageRequest| (codec.key)(q);
        assert_eq!(key(&page(None, 20)), key(&page(None, 20)));
        assert_ne!(key(&page(None, 20)), key(&page(None, 50)));
        assert_ne!(key(&page(None, 20)), key(&page(Some("c:2"), 20)));
        // Cursors may hold anything; keys are plain hex.
        let odd = key(&page(Some("a b:\n{}"), 20));
        assert!(odd.chars().all(|c| c.is_ascii_hexdigit()), "{odd}");
    }

    #[test]
    fn values_come_back_as_they_went() {
        let codec: Codec<PageRequest, Page<Position>> = Codec::new("positions", true);
        let value = Page {
            items: vec![Position {
                symbol: "ACME".into(),
                quantity: "3".parse().unwrap(),
                average_price: "10.25".parse().unwrap(),
                market_value: None,
                updated_at: chrono::Utc::now(),
                as_of: chrono::Utc::now(),
            }],
            next_cursor: Some("next".into()),
        };
        let text = (codec.encode)(&value).expect("serializes");
        assert_eq!((codec.decode)(&text), Some(value));
        assert_eq!((codec.decode)("{not json"), None);
    }
}
