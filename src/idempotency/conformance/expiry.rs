//! Leases, TTL, scopes and capacity: what frees a key, and what must not.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::{
    acquired, claim, eventually_acquired, fp, outcome, scope, Claim, IdempotencyStore, LONG,
};

/// A claim whose owner never finishes is freed when its lease runs out, for a new
/// claim and for one already waiting; an owner finishing late with nobody else on
/// the key still gets its outcome recorded.
pub async fn lease_expiry_frees_stuck_claim<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, lease) = (scope(), unit * 3);
    let key = Uuid::new_v4();
    acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    eventually_acquired(&*store, &s, key, "buy 10", unit / 2, unit * LONG).await;

    // A waiter that outlasts the lease takes the key instead of timing out.
    let key = Uuid::new_v4();
    acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    let (wait, start) = (unit * LONG, Instant::now());
    acquired(claim(&*store, &s, key, "buy 10", wait, lease).await);
    assert!(
        start.elapsed() < wait,
        "the waiter missed the end of the lease"
    );

    // After expiry the key is free for any input.
    let key = Uuid::new_v4();
    let late = acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    tokio::time::sleep(lease + unit).await;
    store.complete_claim(&late, outcome("late")).await.unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", unit, lease).await,
        Claim::Replay(out) if out == outcome("late")
    ));
}

/// An owner whose lease ran out and whose key was taken by a newer attempt can
/// neither free nor settle that attempt's claim with its stale token.
pub async fn stale_owner_cannot_clobber<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, key, lease) = (scope(), Uuid::new_v4(), unit * 3);
    let stale = acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    let newer = eventually_acquired(&*store, &s, key, "buy 10", unit / 2, unit * LONG).await;

    store.release_claim(&stale).await.unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", Duration::ZERO, lease).await,
        Claim::InUse
    ));
    store
        .complete_claim(&stale, outcome("stale"))
        .await
        .unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", Duration::ZERO, lease).await,
        Claim::InUse
    ));

    store
        .complete_claim(&newer, outcome("newer"))
        .await
        .unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", unit, lease).await,
        Claim::Replay(out) if out == outcome("newer")
    ));
}

/// Outcomes are forgotten after the store's TTL. `store` must have been built with
/// `ttl`, and this check must run on a real clock (the TTL may be kept by a cache
/// or server clock that a paused tokio clock does not move).
pub async fn outcomes_expire_after_ttl<S: IdempotencyStore>(store: Arc<S>, ttl: Duration) {
    let (s, key, lease) = (scope(), Uuid::new_v4(), Duration::from_secs(60));
    let token = acquired(claim(&*store, &s, key, "buy 10", ttl, lease).await);
    let recorded = Instant::now();
    store
        .complete_claim(&token, outcome("order-1"))
        .await
        .unwrap();
    let replay = claim(&*store, &s, key, "buy 10", ttl, lease).await;
    // Only checkable if this machine was fast enough; the outcome cannot be older
    // than the time since just before it was recorded.
    if recorded.elapsed() < ttl {
        assert!(matches!(replay, Claim::Replay(_)), "got {replay:?}");
    }
    let give_up = ttl * 20 + Duration::from_secs(5);
    eventually_acquired(&*store, &s, key, "buy 11", ttl / 4, give_up).await;
}

/// The same key in two accounts is two keys: neither waits for, mismatches, nor
/// replays the other.
pub async fn scopes_are_isolated<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (a, b, key, lease) = (scope(), scope(), Uuid::new_v4(), unit * LONG);
    let in_a = acquired(claim(&*store, &a, key, "buy 10", unit, lease).await);
    let in_b = acquired(claim(&*store, &b, key, "sell 3", unit, lease).await);
    store.complete_claim(&in_a, outcome("a")).await.unwrap();
    assert!(matches!(
        claim(&*store, &b, key, "sell 3", Duration::ZERO, lease).await,
        Claim::InUse
    ));
    store.release(&a, key).await.unwrap();
    store.complete_claim(&in_b, outcome("b")).await.unwrap();
    assert!(matches!(
        claim(&*store, &a, key, "buy 10", unit, lease).await,
        Claim::Replay(out) if out == outcome("a")
    ));
    assert!(matches!(
        claim(&*store, &b, key, "sell 3", unit, lease).await,
        Claim::Replay(out) if out == outcome("b")
    ));
}

/// Filling the store far beyond `capacity` completed outcomes (its bound) must not
/// drop a claim in flight: that would let a duplicate through to the broker.
pub async fn capacity_keeps_in_flight_claims<S: IdempotencyStore>(
    store: Arc<S>,
    unit: Duration,
    capacity: u64,
) {
    let (s, key, lease) = (scope(), Uuid::new_v4(), unit * LONG);
    let held = acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    for i in 0..capacity * 4 {
        let other = Uuid::new_v4();
        acquired(claim(&*store, &s, other, "buy 1", unit, lease).await);
        store
            .complete(&s, other, fp("buy 1"), outcome(&i.to_string()))
            .await
            .unwrap();
    }
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", Duration::ZERO, lease).await,
        Claim::InUse
    ));
    assert!(matches!(
        claim(&*store, &s, key, "buy 11", Duration::ZERO, lease).await,
        Claim::Mismatch
    ));
    store.complete_claim(&held, outcome("held")).await.unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", unit, lease).await,
        Claim::Replay(out) if out == outcome("held")
    ));
}
