//! The in-process store: the default when the gateway runs as one process.
//!
//! Two maps, on purpose. Outcomes live in a moka cache, bounded and expiring,
//! because losing an old outcome under pressure only means a late retry is resent
//! with the same key and deduplicated by the broker. In-flight claims live in a plain
//! map that nothing evicts: dropping a claim while its owner is at the broker would
//! hand the key to a concurrent duplicate. Claims leave that map only by `complete`,
//! `release`, or their lease running out, so its size is bounded by the attempts in
//! flight, not by `max_entries`.
//!
//! Every state change happens under one mutex (never held across an await), which is
//! what makes a claim atomic: the outcome check and the insertion of the claim cannot
//! interleave with another claim or a `complete`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Claim, ClaimToken, Fingerprint, IdempotencyStore, StoreError, StoredOutcome};

type Slot = (String, Uuid);

/// Below this many claims a sweep of expired leases is not worth its cost.
const MIN_SWEEP: usize = 64;

/// Far enough to mean "never" without overflowing `Instant`.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub struct MemoryStore {
    done: Cache<Slot, Arc<Done>>,
    inflight: Mutex<InFlight>,
}

struct Done {
    fingerprint: Fingerprint,
    outcome: StoredOutcome,
}

struct Held {
    fingerprint: Fingerprint,
    lease: Uuid,
    /// Tokio time, so tests can run leases on a paused clock.
    expires: Instant,
    /// Wakes this claim's waiters on complete or release (lease expiry wakes them by timer).
    settled: Arc<Notify>,
}

struct InFlight {
    claims: HashMap<Slot, Held>,
    /// Sweep expired leases when the map reaches this size, then double it: amortised
    /// O(1) per claim, and claims abandoned by dropped futures cannot pile up.
    sweep_at: usize,
}

/// Who may complete or release an in-flight claim.
enum Owner {
    Lease(Uuid),
    Fingerprint(Fingerprint),
    Anyone,
}

impl MemoryStore {
    /// `ttl`: how long outcomes are replayable (`idempotency.ttl_secs`, 24 h by default).
    /// `max_entries`: bound on stored outcomes; in-flight claims are not counted.
    pub fn new(ttl: Duration, max_entries: u64) -> MemoryStore {
        MemoryStore {
            done: Cache::builder()
                .max_capacity(max_entries)
                // LRU, not moka's default TinyLFU: TinyLFU may refuse to admit a new
                // entry when full, and the newest outcomes are the ones retried.
                .eviction_policy(EvictionPolicy::lru())
                .time_to_live(ttl)
                .build(),
            inflight: Mutex::new(InFlight {
                claims: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
        }
    }

    /// A poisoned lock means a panic mid-update: refuse rather than trust the state.
    fn lock(&self) -> Result<MutexGuard<'_, InFlight>, StoreError> {
        self.inflight
            .lock()
            .map_err(|_| StoreError::Unavailable("in-memory store poisoned by a panic".into()))
    }

    /// The shared body of `complete*` and `release*`; `outcome` is `None` for a release.
    fn settle(
        &self,
        slot: Slot,
        owner: Owner,
        outcome: Option<(Fingerprint, StoredOutcome)>,
    ) -> Result<(), StoreError> {
        let mut inflight = self.lock()?;
        let ours = match (inflight.claims.get(&slot), &owner) {
            (None, _) => None,
            (Some(held), Owner::Lease(lease)) => Some(held.lease == *lease),
            (Some(held), Owner::Fingerprint(fp)) => Some(held.fingerprint == *fp),
            (Some(_), Owner::Anyone) => Some(true),
        };
        match ours {
            // Someone else's claim: leave it alone, it will settle the key itself.
            Some(false) => {
                tracing::warn!(key = %slot.1, "idempotency claim settled by a non-owner (lease ran out?); ignored");
                return Ok(());
            }
            Some(true) => {
                let held = inflight.claims.remove(&slot).expect("checked above");
                if let Some((fingerprint, outcome)) = outcome {
                    self.record(slot, fingerprint, outcome);
                }
                held.settled.notify_waiters();
            }
            // Free: an outcome is still worth keeping (first one wins), a release is moot.
            None => {
                if let Some((fingerprint, outcome)) = outcome {
                    if !self.done.contains_key(&slot) {
                        self.record(slot, fingerprint, outcome);
                    }
                }
            }
        }
        Ok(())
    }

    fn record(&self, slot: Slot, fingerprint: Fingerprint, outcome: StoredOutcome) {
        self.done.insert(
            slot,
            Arc::new(Done {
                fingerprint,
                outcome,
            }),
        );
    }
}

impl InFlight {
    fn sweep_if_due(&mut self, now: Instant) {
        if self.claims.len() >= self.sweep_at {
            self.claims.retain(|_, held| held.expires > now);
            self.sweep_at = (self.claims.len() * 2).max(MIN_SWEEP);
        }
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim(
        &self,
        scope: &str,
        key: Uuid,
        fingerprint: Fingerprint,
        wait: Duration,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let slot: Slot = (scope.to_owned(), key);
        let start = Instant::now();
        let deadline = start + wait.min(FOREVER);
        loop {
            let (settled, wake_at) = {
                let mut inflight = self.lock()?;
                // Checked under the lock: `complete` records and drops the claim under
                // it too, so no claim can slip between an outcome and its claim.
                if let Some(done) = self.done.get(&slot) {
                    return Ok(if done.fingerprint == fingerprint {
                        Claim::Replay(done.outcome.clone())
                    } else {
                        Claim::Mismatch
                    });
                }
                let now = Instant::now();
                match inflight.claims.get(&slot) {
                    Some(held) if held.expires > now => {
                        if held.fingerprint != fingerprint {
                            return Ok(Claim::Mismatch);
                        }
                        if now >= deadline {
                            return Ok(Claim::InUse);
                        }
                        // Created under the lock, so a `notify_waiters` after we unlock
                        // reaches it even before it is first polled.
                        let settled = held.settled.clone().notified_owned();
                        (settled, deadline.min(held.expires))
                    }
                    // Free, or the holder's lease ran out: take it.
                    _ => {
                        inflight.sweep_if_due(now);
                        let token = ClaimToken {
                            scope: slot.0.clone(),
                            key,
                            fingerprint,
                            lease: Uuid::new_v4(),
                        };
                        inflight.claims.insert(
                            slot,
                            Held {
                                fingerprint,
                                lease: token.lease,
                                expires: now + lease.min(FOREVER),
                                settled: Arc::new(Notify::new()),
                            },
                        );
                        return Ok(Claim::Acquired(token));
                    }
                }
            };
            // Woken by complete/release, or at the deadline or lease end; the loop
            // then re-reads the state and decides.
            let _ = tokio::time::timeout_at(wake_at, settled).await;
        }
    }

    async fn complete(
        &self,
        scope: &str,
        key: Uuid,
        fingerprint: Fingerprint,
        outcome: StoredOutcome,
    ) -> Result<(), StoreError> {
        let slot = (scope.to_owned(), key);
        self.settle(
            slot,
            Owner::Fingerprint(fingerprint),
            Some((fingerprint, outcome)),
        )
    }

    async fn release(&self, scope: &str, key: Uuid) -> Result<(), StoreError> {
        self.settle((scope.to_owned(), key), Owner::Anyone, None)
    }

    async fn complete_claim(
        &self,
        token: &ClaimToken,
        outcome: StoredOutcome,
    ) -> Result<(), StoreError> {
        let slot = (token.scope.clone(), token.key);
        self.settle(
            slot,
            Owner::Lease(token.lease),
            Some((token.fingerprint, outcome)),
        )
    }

    async fn release_claim(&self, token: &ClaimToken) -> Result<(), StoreError> {
        let slot = (token.scope.clone(), token.key);
        self.settle(slot, Owner::Lease(token.lease), None)
    }
}

#[cfg(test)]
mod tests {
    // The conformance suite run against the memory store, plus its own bounds.

    use super::*;
    use crate::idempotency::conformance as suite;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    /// Real time: tokio's `test-util` (paused clock) is not enabled in this crate.
    /// The suite only asserts lower bounds and "eventually", so a slow machine makes
    /// it slower, not flaky.
    const UNIT: Duration = Duration::from_millis(20);

    fn store() -> Arc<MemoryStore> {
        Arc::new(MemoryStore::new(DAY, 10_000))
    }

    #[tokio::test]
    async fn acquire_then_replay() {
        suite::acquire_then_replay(store(), UNIT).await;
    }

    #[tokio::test]
    async fn mismatch_in_flight_and_done() {
        suite::mismatch_in_flight_and_done(store(), UNIT).await;
    }

    /// Real threads and a real clock, so claims truly race; many rounds to give a
    /// broken claim every chance to let two through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_claims_acquire_once() {
        let store = store();
        for _ in 0..20 {
            suite::concurrent_claims_acquire_once(store.clone(), UNIT).await;
        }
    }

    #[tokio::test]
    async fn waiter_gets_in_use() {
        suite::waiter_gets_in_use(store(), UNIT).await;
    }

    #[tokio::test]
    async fn release_lets_next_claim_acquire() {
        suite::release_lets_next_claim_acquire(store(), UNIT).await;
    }

    #[tokio::test]
    async fn outcome_is_final() {
        suite::outcome_is_final(store(), UNIT).await;
    }

    #[tokio::test]
    async fn lease_expiry_frees_stuck_claim() {
        suite::lease_expiry_frees_stuck_claim(store(), UNIT).await;
    }

    #[tokio::test]
    async fn stale_owner_cannot_clobber() {
        suite::stale_owner_cannot_clobber(store(), UNIT).await;
    }

    /// moka keeps TTL on its own real clock, so this one runs in real time.
    #[tokio::test]
    async fn outcomes_expire_after_ttl() {
        let ttl = Duration::from_millis(50);
        suite::outcomes_expire_after_ttl(Arc::new(MemoryStore::new(ttl, 100)), ttl).await;
    }

    #[tokio::test]
    async fn scopes_are_isolated() {
        suite::scopes_are_isolated(store(), UNIT).await;
    }

    #[tokio::test]
    async fn capacity_keeps_in_flight_claims() {
        let store = Arc::new(MemoryStore::new(DAY, 16));
        suite::capacity_keeps_in_flight_claims(store.clone(), UNIT, 16).await;
        store.done.run_pending_tasks();
        assert!(store.done.entry_count() <= 16, "outcomes are bounded");
    }

    /// Claims abandoned by dropped futures are swept once their lease ran out
    /// (a zero lease has run out as soon as it is taken).
    #[tokio::test]
    async fn abandoned_claims_are_swept() {
        let store = store();
        for _ in 0..MIN_SWEEP * 4 {
            let claim = store
                .claim(
                    "acct",
                    Uuid::new_v4(),
                    Fingerprint::of(b"x"),
                    UNIT,
                    Duration::ZERO,
                )
                .await
                .unwrap();
            assert!(matches!(claim, Claim::Acquired(_)));
        }
        assert!(store.lock().unwrap().claims.len() <= MIN_SWEEP);
    }

    /// moka's default TinyLFU may refuse a new entry when full, in favour of entries
    /// read more often; the store must keep the newest outcome, the one being retried.
    #[tokio::test]
    async fn newest_outcome_survives_a_full_cache() {
        let store = Arc::new(MemoryStore::new(DAY, 16));
        let fp = Fingerprint::of(b"buy 1");
        let (wait, lease) = (UNIT, UNIT * 1000);
        for _ in 0..64 {
            let key = Uuid::new_v4();
            let token = match store.claim("acct", key, fp, wait, lease).await.unwrap() {
                Claim::Acquired(token) => token,
                other => panic!("expected Acquired, got {other:?}"),
            };
            store
                .complete_claim(&token, StoredOutcome(vec![1]))
                .await
                .unwrap();
            // Popular old outcomes: replayed many times.
            for _ in 0..8 {
                store.claim("acct", key, fp, wait, lease).await.unwrap();
            }
            store.done.run_pending_tasks();
        }
        let key = Uuid::new_v4();
        store.claim("acct", key, fp, wait, lease).await.unwrap();
        store
            .complete("acct", key, fp, StoredOutcome(vec![2]))
            .await
            .unwrap();
        store.done.run_pending_tasks();
        let replay = store.claim("acct", key, fp, wait, lease).await.unwrap();
        assert!(
            matches!(replay, Claim::Replay(StoredOutcome(ref b)) if *b == [2]),
            "got {replay:?}"
        );
    }
}
