//! The conformance suite run against the memory store, plus its own bounds.

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
