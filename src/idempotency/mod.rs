//! Idempotency keys for mutations, with Stripe's semantics (docs/api.md,
//! "Submitting safely").
//!
//! Users trade real money: a client that retries `submitOrder` after a network
//! failure must get the first attempt's answer, never a second order. The store
//! decides, atomically per (account, key), whether an attempt may go to the broker
//! (`Acquired`), must replay an earlier answer (`Replay`), or must be refused
//! (`Mismatch`, `InUse`).
//!
//! A key is in one of three states: free, in flight (claimed by one attempt, with a
//! lease), or done (an outcome kept for the store's TTL). Two backends: [`MemoryStore`]
//! for one process, [`RedisStore`] for several replicas, where a claim is a Lua
//! script that creates the in-flight record with a `PX` lease, and `complete` and
//! `release` are compare-and-set scripts on the owner's lease id.

mod memory;
mod redis_store;

#[doc(hidden)]
pub mod conformance;

use std::time::Duration;

use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use memory::MemoryStore;
pub use redis_store::RedisStore;

/// SHA-256 of the normalized input; the caller computes it.
///
/// Stored instead of the input so that a key reused with a different order is
/// recognised without keeping (or comparing) the order itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(bytes).into())
    }
}

/// What is stored once an attempt finished: an opaque payload (JSON bytes the caller serialized).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOutcome(pub Vec<u8>);

/// Proof of ownership of one in-flight claim, returned in [`Claim::Acquired`].
///
/// A lease can run out while its owner is still working (a hung broker call); the
/// key is then claimed by a newer attempt. Completing or releasing with the token
/// only acts while this very claim still holds the key, so a late owner cannot free
/// or overwrite the newer attempt's claim and let a third one through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToken {
    scope: String,
    key: Uuid,
    fingerprint: Fingerprint,
    /// Unique per claim, across processes (a Redis backend compares it in a script).
    lease: Uuid,
}

#[derive(Debug)]
pub enum Claim {
    /// This caller owns the key and must call `complete` or `release`
    /// (preferably `complete_claim` / `release_claim` with this token).
    Acquired(ClaimToken),
    /// The key already finished with the same fingerprint: replay this.
    Replay(StoredOutcome),
    /// The key was used with a different input (IDEMPOTENCY_KEY_REUSED).
    Mismatch,
    /// Another attempt still holds the key after waiting `wait` (IDEMPOTENCY_KEY_IN_USE).
    InUse,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The caller must refuse the mutation: without the store it cannot know
    /// whether the key was already used, and falling back could place a duplicate.
    #[error("idempotency store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Atomically claims `key` within `scope` (the broker account) for `fingerprint`. If another attempt holds it
    /// in flight with the same fingerprint, waits up to `wait` for its outcome (then Replay) or the key to be released (then the
    /// waiter tries to acquire it itself), else InUse. A different fingerprint is Mismatch at once, whether in flight or done.
    /// `lease`: how long an in-flight claim lives if its owner never completes or releases (crash, hung task); after it, the key is claimable again.
    ///
    /// Pick `lease` longer than the longest an owner can spend (broker deadline plus
    /// store latency): an owner outliving its lease shares the key with a newer attempt,
    /// and only the broker's own key dedup then stands between them and a duplicate.
    async fn claim(
        &self,
        scope: &str,
        key: Uuid,
        fingerprint: Fingerprint,
        wait: Duration,
        lease: Duration,
    ) -> Result<Claim, StoreError>;

    /// Records the outcome for replay (kept for the store's TTL, 24 h by default) and wakes waiters.
    ///
    /// Identifies the owner by fingerprint only: it records while the key is in flight
    /// with `fingerprint` (whoever holds it) or free, and otherwise changes nothing.
    /// The first recorded outcome is never overwritten. Prefer [`Self::complete_claim`].
    async fn complete(
        &self,
        scope: &str,
        key: Uuid,
        fingerprint: Fingerprint,
        outcome: StoredOutcome,
    ) -> Result<(), StoreError>;

    /// Gives the key up without an outcome (the attempt failed before reaching the broker, or its outcome is unknown and the
    /// client's retry must be able to settle it). Waiters wake and one of them may acquire it.
    ///
    /// Frees whichever claim is in flight, even a newer one after this caller's lease
    /// ran out; never forgets a recorded outcome. Prefer [`Self::release_claim`].
    async fn release(&self, scope: &str, key: Uuid) -> Result<(), StoreError>;

    /// [`Self::complete`] by the owner of `token`: records the outcome if this claim
    /// still holds the key, or if the key is free (the lease ran out and nobody took it,
    /// so the answer is still worth replaying). Does nothing while a newer claim holds it.
    async fn complete_claim(
        &self,
        token: &ClaimToken,
        outcome: StoredOutcome,
    ) -> Result<(), StoreError>;

    /// [`Self::release`] by the owner of `token`: frees the key only if this claim still holds it.
    async fn release_claim(&self, token: &ClaimToken) -> Result<(), StoreError>;
}
