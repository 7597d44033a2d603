//! The Redis store: idempotency keys shared by several gateway replicas.
//!
//! Same semantics as [`super::MemoryStore`], with Redis as the one place that
//! decides. Each key is one string value, `prefix:idem:<scope>:<key>`:
//!
//! - `f:<fingerprint hex>:<lease uuid>` while in flight, with `PX lease`, so a claim
//!   whose owner crashed frees itself on the Redis clock;
//! - `d:<fingerprint hex>:<outcome bytes>` once done, with `PX ttl` (Lua strings are
//!   binary-safe, so the outcome is stored as is).
//!
//! Every decision is one Lua script, run atomically by Redis: the claim reads the
//! record and creates the in-flight one in the same step, so two replicas cannot both
//! acquire; `complete*` / `release*` compare the lease (or fingerprint) and write in
//! the same step, so a stale owner cannot clobber a newer claim.
//!
//! Waiting for another attempt's outcome is polling: every 10 ms, doubling to
//! 100 ms, never sleeping past the holder's lease end or the caller's `wait`. A
//! pub/sub wake-up would answer a few ms sooner at the cost of a second connection
//! per replica; duplicates of one key are rare enough that polling is cheaper.
//!
//! Failure: any Redis error or timeout (each call is bounded by `redis.timeout_ms`)
//! is [`StoreError::Unavailable`] and the mutation is refused. There is no fallback
//! to memory: a replica deciding alone could let a retry place a second order. A
//! claim that times out may still have been applied by Redis; its in-flight record
//! then blocks the key (the client sees IN_USE) until its lease runs out, which is
//! safe. Error messages come from [`crate::cluster::RedisError`], never the URL.
//!
//! Redis must run with `maxmemory-policy noeviction` (docs/operations.md;
//! [`Redis::check_eviction_policy`] warns otherwise): an evicted record is a key that
//! lets a retry through to the broker again. The scope (a hash of the account) and
//! the key (the client's UUID) appear in Redis keys; neither is a secret.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Claim, ClaimToken, Fingerprint, IdempotencyStore, StoreError, StoredOutcome};
use crate::cluster::Redis;

/// Far enough to mean "never" without overflowing `Instant` or Redis' `PX`.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// First and longest pause between two polls of a key held by another attempt.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(100);

/// KEYS[1] the record; ARGV: fingerprint hex, new lease uuid, lease ms.
/// Returns {kind, detail}: acquired, replay (outcome), mismatch, in_flight (pttl).
/// Positions: 'f:'/'d:' is 1-2, the fingerprint 3-66, ':' 67, the rest from 68.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'f:' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
  return {'acquired', ''}
end
if string.sub(v, 3, 66) ~= ARGV[1] then
  return {'mismatch', ''}
end
if string.sub(v, 1, 1) == 'd' then
  return {'replay', string.sub(v, 68)}
end
return {'in_flight', tostring(redis.call('PTTL', KEYS[1]))}
";

/// KEYS[1] the record; ARGV: owner kind (lease, fingerprint or anyone), owner
/// value, then for a completion the fingerprint hex, outcome and TTL ms (a release
/// passes '' as fingerprint). Returns 1 if it acted, 0 if there was nothing to do
/// (done, or a release of a free key), -1 if another claim holds the key.
const SETTLE: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 1) == 'd' then
  return 0
end
if v then
  local ours = ARGV[1] == 'anyone'
    or (ARGV[1] == 'lease' and string.sub(v, 68) == ARGV[2])
    or (ARGV[1] == 'fingerprint' and string.sub(v, 3, 66) == ARGV[2])
  if not ours then
    return -1
  end
end
if ARGV[3] == '' then
  if not v then
    return 0
  end
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], 'd:' .. ARGV[3] .. ':' .. ARGV[4], 'PX', ARGV[5])
return 1
";

pub struct RedisStore {
    /// Connection, per-call timeout, key prefix and the health `/readyz` reports.
    redis: Arc<Redis>,
    /// How long outcomes are replayable (`idempotency.ttl_secs`), in ms for `PX`.
    ttl_ms: u64,
    /// The atomic claim ([`CLAIM`]); redis-rs sends its SHA and loads it on `NOSCRIPT`
    /// (a restarted Redis has forgotten it).
    claim_script: Script,
    /// The compare-and-set behind `complete*` and `release*` ([`SETTLE`]).
    settle_script: Script,
}

/// Who may complete or release an in-flight claim (the script's first two args).
enum Owner {
    Lease(Uuid),
    Fingerprint(Fingerprint),
    Anyone,
}

impl RedisStore {
    /// `ttl`: how long outcomes are replayable (`idempotency.ttl_secs`, 24 h by default).
    pub fn new(redis: Arc<Redis>, ttl: Duration) -> RedisStore {
        RedisStore {
            redis,
            // `PX 0` is an error in Redis.
            ttl_ms: millis(ttl).max(1),
            claim_script: Script::new(CLAIM),
            settle_script: Script::new(SETTLE),
        }
    }

    fn record_key(&self, scope: &str, key: Uuid) -> String {
        self.redis.key(&["idem", scope, &key.to_string()])
    }

    /// One claim attempt: the script's verdict, with the pttl for `in_flight`.
    async fn try_claim(
        &self,
        record: &str,
        fingerprint: &str,
        lease: Uuid,
        lease_ms: u64,
    ) -> Result<(String, Vec<u8>), StoreError> {
        let mut conn = self.redis.conn();
        let mut call = self.claim_script.key(record);
        call.arg(fingerprint).arg(lease.to_string()).arg(lease_ms);
        self.redis
            .call("idempotency claim", async move {
                call.invoke_async(&mut conn).await
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// The shared body of `complete*` and `release*`; `outcome` is `None` for a release.
    async fn settle(
        &self,
        scope: &str,
        key: Uuid,
        owner: Owner,
        outcome: Option<(Fingerprint, StoredOutcome)>,
    ) -> Result<(), StoreError> {
        let (kind, value) = match owner {
            Owner::Lease(lease) => ("lease", lease.to_string()),
            Owner::Fingerprint(fp) => ("fingerprint", hex::encode(fp.0)),
            Owner::Anyone => ("anyone", String::new()),
        };
        let (fingerprint, outcome) = match outcome {
            Some((fp, outcome)) => (hex::encode(fp.0), outcome.0),
            None => (String::new(), Vec::new()),
        };
        let mut conn = self.redis.conn();
        let mut call = self.settle_script.key(self.record_key(scope, key));
        call.arg(kind).arg(value).arg(fingerprint);
        call.arg(outcome).arg(self.ttl_ms);
        let acted: i64 = self
            .redis
            .call("idempotency settle", async move {
                call.invoke_async(&mut conn).await
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if acted < 0 {
            tracing::warn!(%key, "idempotency claim settled by a non-owner (lease ran out?); ignored");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for RedisStore {
    async fn claim(
        &self,
        scope: &str,
        key: Uuid,
        fingerprint: Fingerprint,
        wait: Duration,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let record = self.record_key(scope, key);
        let fp_hex = hex::encode(fingerprint.0);
        // `PX 0` is an error in Redis; a 1 ms lease has run out as soon as it is taken.
        let lease_ms = millis(lease).max(1);
        let deadline = Instant::now() + wait.min(FOREVER);
        let mut pause = POLL_MIN;
        loop {
            let lease_id = Uuid::new_v4();
            let (kind, detail) = self.try_claim(&record, &fp_hex, lease_id, lease_ms).await?;
            let pttl = match kind.as_str() {
                "acquired" => {
                    return Ok(Claim::Acquired(ClaimToken {
                        scope: scope.to_owned(),
                        key,
                        fingerprint,
                        lease: lease_id,
                    }))
                }
                "replay" => return Ok(Claim::Replay(StoredOutcome(detail))),
                "mismatch" => return Ok(Claim::Mismatch),
                "in_flight" => std::str::from_utf8(&detail)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok()),
                other => {
                    return Err(StoreError::Unavailable(format!(
                        "unexpected idempotency claim reply {other:?}"
                    )))
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(Claim::InUse);
            }
            // Just past the lease end, when the key is claimable again; a record
            // without a TTL (negative pttl, never written by this store) only waits.
            let lease_end = match pttl {
                Some(ms) if ms >= 0 => now + Duration::from_millis(ms as u64 + 1),
                _ => deadline,
            };
            tokio::time::sleep_until((now + pause).min(deadline).min(lease_end)).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    async fn complete(
        &self,
        scope: &str,
        key: Uuid,
        fingerprint: Fingerprint,
        outcome: StoredOutcome,
    ) -> Result<(), StoreError> {
        let owner = Owner::Fingerprint(fingerprint);
        self.settle(scope, key, owner, Some((fingerprint, outcome)))
            .await
    }

    async fn release(&self, scope: &str, key: Uuid) -> Result<(), StoreError> {
        self.settle(scope, key, Owner::Anyone, None).await
    }

    async fn complete_claim(
        &self,
        token: &ClaimToken,
        outcome: StoredOutcome,
    ) -> Result<(), StoreError> {
        let owner = Owner::Lease(token.lease);
        let outcome = Some((token.fingerprint, outcome));
        self.settle(&token.scope, token.key, owner, outcome).await
    }

    async fn release_claim(&self, token: &ClaimToken) -> Result<(), StoreError> {
        let owner = Owner::Lease(token.lease);
        self.settle(&token.scope, token.key, owner, None).await
    }
}

/// `d` in whole milliseconds, capped at [`FOREVER`].
fn millis(d: Duration) -> u64 {
    d.min(FOREVER).as_millis() as u64
}
