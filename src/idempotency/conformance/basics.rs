//! Claim, replay, mismatch, wait and release: the states a key goes through.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::time::Instant;
use uuid::Uuid;

use super::{acquired, claim, fp, outcome, scope, Claim, IdempotencyStore, LONG};

/// The first claim acquires; after `complete`, the same input replays the outcome,
/// again and again, through either way of completing.
pub async fn acquire_then_replay<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, lease) = (scope(), unit * LONG);
    let key = Uuid::new_v4();
    acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    store
        .complete(&s, key, fp("buy 10"), outcome("order-1"))
        .await
        .unwrap();
    for _ in 0..2 {
        match claim(&*store, &s, key, "buy 10", unit, lease).await {
            Claim::Replay(out) => assert_eq!(out, outcome("order-1")),
            other => panic!("expected Replay, got {other:?}"),
        }
    }

    let key = Uuid::new_v4();
    let token = acquired(claim(&*store, &s, key, "sell 5", unit, lease).await);
    store
        .complete_claim(&token, outcome("order-2"))
        .await
        .unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "sell 5", unit, lease).await,
        Claim::Replay(out) if out == outcome("order-2")
    ));
}

/// A different input under a used key is refused at once, in flight or done, and
/// leaves the original claim and outcome untouched.
pub async fn mismatch_in_flight_and_done<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, key, lease, wait) = (scope(), Uuid::new_v4(), unit * LONG, unit * LONG);
    let token = acquired(claim(&*store, &s, key, "buy 10", wait, lease).await);

    let start = Instant::now();
    assert!(matches!(
        claim(&*store, &s, key, "buy 11", wait, lease).await,
        Claim::Mismatch
    ));
    assert!(start.elapsed() < wait, "a mismatch must not wait");
    // A stray complete with the other input must not settle the key.
    store
        .complete(&s, key, fp("buy 11"), outcome("bogus"))
        .await
        .unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", Duration::ZERO, lease).await,
        Claim::InUse
    ));

    store
        .complete_claim(&token, outcome("order-1"))
        .await
        .unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 11", wait, lease).await,
        Claim::Mismatch
    ));
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", wait, lease).await,
        Claim::Replay(out) if out == outcome("order-1")
    ));
}

/// 50 simultaneous claims of one key: exactly one goes to the broker, the other 49
/// wait and replay its outcome.
pub async fn concurrent_claims_acquire_once<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    const N: usize = 50;
    let (s, key) = (Arc::new(scope()), Uuid::new_v4());
    let start = Arc::new(Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (store, s, start) = (store.clone(), s.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let (wait, start) = (unit * LONG, Instant::now());
                let claim = claim(&*store, &s, key, "buy 10", wait, unit * LONG).await;
                assert!(start.elapsed() < wait, "a waiter was not woken by complete");
                if let Claim::Acquired(token) = &claim {
                    // Hold the key a while so that the others really wait on it.
                    tokio::time::sleep(unit).await;
                    let body = format!("order-of-{i}");
                    store.complete_claim(token, outcome(&body)).await.unwrap();
                    return (claim, Some(body));
                }
                (claim, None)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut replays = Vec::new();
    for task in tasks {
        match task.await.expect("task panicked") {
            (Claim::Acquired(_), Some(body)) => winners.push(body),
            (Claim::Replay(out), _) => replays.push(out),
            (other, _) => panic!("expected Acquired or Replay, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim may acquire");
    assert_eq!(replays.len(), N - 1);
    assert!(replays.iter().all(|out| *out == outcome(&winners[0])));
}

/// A duplicate waits `wait` for an owner that never finishes, then gets InUse.
pub async fn waiter_gets_in_use<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, key, lease, wait) = (scope(), Uuid::new_v4(), unit * LONG, unit * 2);
    acquired(claim(&*store, &s, key, "buy 10", wait, lease).await);
    let start = Instant::now();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", wait, lease).await,
        Claim::InUse
    ));
    assert!(start.elapsed() >= wait, "InUse before waiting `wait`");
}

/// After a release the key is claimable again, both by a later claim and by one
/// already waiting (which must be woken, not left to time out).
pub async fn release_lets_next_claim_acquire<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, key, lease) = (scope(), Uuid::new_v4(), unit * LONG);
    let token = acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    store.release_claim(&token).await.unwrap();
    let token = acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);

    let wait = unit * LONG;
    let waiter = {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            (
                claim(&*store, &s, key, "buy 10", wait, lease).await,
                start.elapsed(),
            )
        })
    };
    tokio::time::sleep(unit).await;
    store.release(&s, key).await.unwrap();
    let (second, waited) = waiter.await.unwrap();
    let second = acquired(second);
    // A store that only re-checks at the deadline also ends in Acquired; the
    // generous bound tells a woken waiter from one that timed out.
    assert!(waited < wait, "the waiter was not woken by the release");
    assert_ne!(token, second, "each claim gets its own token");
    // Released keys are free for any input: nothing was recorded.
    store.release_claim(&second).await.unwrap();
    acquired(claim(&*store, &s, key, "buy 11", unit, lease).await);
}

/// A release after completion never forgets the outcome, and the first outcome wins.
pub async fn outcome_is_final<S: IdempotencyStore>(store: Arc<S>, unit: Duration) {
    let (s, key, lease) = (scope(), Uuid::new_v4(), unit * LONG);
    let token = acquired(claim(&*store, &s, key, "buy 10", unit, lease).await);
    store
        .complete_claim(&token, outcome("order-1"))
        .await
        .unwrap();
    store.release(&s, key).await.unwrap();
    store.release_claim(&token).await.unwrap();
    store
        .complete(&s, key, fp("buy 10"), outcome("order-2"))
        .await
        .unwrap();
    assert!(matches!(
        claim(&*store, &s, key, "buy 10", unit, lease).await,
        Claim::Replay(out) if out == outcome("order-1")
    ));
}
