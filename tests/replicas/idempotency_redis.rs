//! The idempotency conformance suite against a real `redis-server`, plus what only
//! Redis has: an outage, and several replicas sharing one key.
//!
//! Each test starts its own server (a free port, killed on drop), so tests run in
//! parallel without sharing state.

use std::sync::Arc;
use std::time::Duration;

use brokergraph::cluster::Redis;
use brokergraph::config::RedisSettings;
use brokergraph::idempotency::conformance as suite;
use brokergraph::idempotency::{
    Claim, Fingerprint, IdempotencyStore, RedisStore, StoreError, StoredOutcome,
};
use brokergraph::secret::Secret;
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::redis_server::RedisServer;

const DAY: Duration = Duration::from_secs(24 * 3600);
/// Leases run on the Redis clock and waiters poll (up to 100 ms apart), so a unit
/// well above the memory store's 20 ms. The suite only asserts lower bounds and
/// "eventually": a loaded machine makes it slower, not flaky.
const UNIT: Duration = Duration::from_millis(100);

/// One gateway replica's handle on `server`.
fn redis(server: &RedisServer) -> Arc<Redis> {
    let settings = RedisSettings {
        url: Some(Secret::new(server.url())),
        ..Default::default()
    };
    Arc::new(Redis::open(&settings).expect("valid url").expect("url set"))
}

fn store_with_ttl(server: &RedisServer, ttl: Duration) -> Arc<RedisStore> {
    Arc::new(RedisStore::new(redis(server), ttl))
}

fn store(server: &RedisServer) -> Arc<RedisStore> {
    store_with_ttl(server, DAY)
}

#[tokio::test]
async fn acquire_then_replay() {
    let server = RedisServer::start();
    suite::acquire_then_replay(store(&server), UNIT).await;
}

#[tokio::test]
async fn mismatch_in_flight_and_done() {
    let server = RedisServer::start();
    suite::mismatch_in_flight_and_done(store(&server), UNIT).await;
}

/// Real threads, so claims truly race (in Redis, the script serializes them);
/// several rounds to give a broken claim a chance to let two through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_acquire_once() {
    let server = RedisServer::start();
    let store = store(&server);
    for _ in 0..5 {
        suite::concurrent_claims_acquire_once(store.clone(), UNIT).await;
    }
}

#[tokio::test]
async fn waiter_gets_in_use() {
    let server = RedisServer::start();
    suite::waiter_gets_in_use(store(&server), UNIT).await;
}

#[tokio::test]
async fn release_lets_next_claim_acquire() {
    let server = RedisServer::start();
    suite::release_lets_next_claim_acquire(store(&server), UNIT).await;
}

#[tokio::test]
async fn outcome_is_final() {
    let server = RedisServer::start();
    suite::outcome_is_final(store(&server), UNIT).await;
}

#[tokio::test]
async fn lease_expiry_frees_stuck_claim() {
    let server = RedisServer::start();
    suite::lease_expiry_frees_stuck_claim(store(&server), UNIT).await;
}

#[tokio::test]
async fn stale_owner_cannot_clobber() {
    let server = RedisServer::start();
    suite::stale_owner_cannot_clobber(store(&server), UNIT).await;
}

/// The TTL is kept by Redis (`PX`), on its own clock.
#[tokio::test]
async fn outcomes_expire_after_ttl() {
    let server = RedisServer::start();
    let ttl = Duration::from_millis(200);
    suite::outcomes_expire_after_ttl(store_with_ttl(&server, ttl), ttl).await;
}

#[tokio::test]
async fn scopes_are_isolated() {
    let server = RedisServer::start();
    suite::scopes_are_isolated(store(&server), UNIT).await;
}

/// The Redis store has no entry bound of its own: Redis' memory is the bound, and
/// with `noeviction` (which the helper server runs, as production must) a full
/// Redis refuses writes rather than dropping a key. The check still holds and is
/// cheap, so it runs with a nominal capacity: many outcomes written around an
/// in-flight claim must leave that claim alone.
#[tokio::test]
async fn capacity_keeps_in_flight_claims() {
    let server = RedisServer::start();
    suite::capacity_keeps_in_flight_claims(store(&server), UNIT, 64).await;
}

fn fp(input: &str) -> Fingerprint {
    Fingerprint::of(input.as_bytes())
}

/// A record's value and remaining ms, read behind the store's back.
async fn inspect(raw: &mut redis::aio::MultiplexedConnection, record: &str) -> (Vec<u8>, i64) {
    let value: Vec<u8> = redis::cmd("GET")
        .arg(record)
        .query_async(raw)
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(record)
        .query_async(raw)
        .await
        .unwrap();
    (value, pttl)
}

/// The record layout the module doc promises (operators read it with redis-cli),
/// its lease and TTL, and outcomes that are not UTF-8 or contain the separator.
#[tokio::test]
async fn record_layout_lease_ttl_and_binary_outcomes() {
    let server = RedisServer::start();
    let store = store(&server);
    let (scope, key, lease) = ("acct-layout", Uuid::new_v4(), Duration::from_secs(60));
    let record = format!("brokergraph:idem:{scope}:{key}");
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let token = match store.claim(scope, key, fp("buy 10"), UNIT, lease).await {
        Ok(Claim::Acquired(token)) => token,
        other => panic!("expected Acquired, got {other:?}"),
    };
    let (value, pttl) = inspect(&mut raw, &record).await;
    let in_flight = format!("f:{}:", hex::encode(fp("buy 10").0));
    assert!(value.starts_with(in_flight.as_bytes()), "{value:?}");
    assert_eq!(value.len(), in_flight.len() + 36, "then the lease uuid");
    assert!(
        pttl > 0 && pttl <= 60_000,
        "in flight for the lease: {pttl}"
    );

    let body: Vec<u8> = (0..=255u8).chain(*b":d:f:").collect();
    let outcome = StoredOutcome(body.clone());
    store.complete_claim(&token, outcome).await.unwrap();
    let (value, pttl) = inspect(&mut raw, &record).await;
    let done = format!("d:{}:", hex::encode(fp("buy 10").0));
    assert_eq!(value, [done.as_bytes(), &body].concat());
    assert!(
        pttl > 60_000 && pttl <= DAY.as_millis() as i64,
        "kept for the TTL: {pttl}"
    );
    match store.claim(scope, key, fp("buy 10"), UNIT, lease).await {
        Ok(Claim::Replay(out)) => assert_eq!(out.0, body),
        other => panic!("expected Replay, got {other:?}"),
    }
}

/// With Redis gone, a claim is refused (bounded by `redis.timeout_ms`), never
/// answered from local state, and its error does not leak the URL. Once Redis is
/// back, the same store works again without being rebuilt.
#[tokio::test]
async fn redis_down_is_unavailable_then_recovers() {
    let mut server = RedisServer::start();
    let store = store(&server);
    let (scope, lease) = ("acct".to_string(), UNIT * 100);
    let key = Uuid::new_v4();
    let first = store.claim(&scope, key, fp("buy 10"), UNIT, lease).await;
    assert!(matches!(first, Ok(Claim::Acquired(_))), "got {first:?}");

    server.kill();
    for _ in 0..3 {
        match store.claim(&scope, key, fp("buy 10"), UNIT, lease).await {
            Err(StoreError::Unavailable(why)) => {
                assert!(!why.contains(&server.url()), "leaks the URL: {why}");
                assert!(!why.contains("127.0.0.1"), "leaks the host: {why}");
            }
            other => panic!("expected Unavailable with Redis down, got {other:?}"),
        }
    }
    let completed = store
        .complete(&scope, key, fp("buy 10"), StoredOutcome(b"x".to_vec()))
        .await;
    assert!(matches!(completed, Err(StoreError::Unavailable(_))));

    // The restarted server is empty; the connection manager reconnects on the
    // next calls (the first may still fail while it does).
    server.restart();
    let key = Uuid::new_v4();
    let mut last = None;
    for _ in 0..50 {
        match store.claim(&scope, key, fp("buy 10"), UNIT, lease).await {
            Ok(claim) => {
                last = Some(claim);
                break;
            }
            Err(_) => tokio::time::sleep(UNIT).await,
        }
    }
    assert!(
        matches!(last, Some(Claim::Acquired(_))),
        "store did not recover: {last:?}"
    );
}

/// Two replicas (two handles, two connections) on one Redis: 30 simultaneous
/// claims of one key, spread over both, acquire exactly once; every other one
/// waits and replays the winner's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_acquire_once() {
    const N: usize = 30;
    let server = RedisServer::start();
    let replicas = [store(&server), store(&server)];
    let (scope, key) = (Arc::new(format!("acct-{}", Uuid::new_v4())), Uuid::new_v4());
    let start = Arc::new(Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (store, scope, start) = (replicas[i % 2].clone(), scope.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let claim = store
                    .claim(&scope, key, fp("buy 10"), UNIT * 100, UNIT * 100)
                    .await
                    .expect("redis up");
                if let Claim::Acquired(token) = &claim {
                    tokio::time::sleep(UNIT).await;
                    let body = format!("order-of-{i}").into_bytes();
                    let outcome = StoredOutcome(body.clone());
                    store.complete_claim(token, outcome).await.unwrap();
                    return (claim, Some(body));
                }
                (claim, None)
            })
        })
        .collect();
    let (mut winners, mut replays) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.expect("task panicked") {
            (Claim::Acquired(_), Some(body)) => winners.push(body),
            (Claim::Replay(out), _) => replays.push(out.0),
            (other, _) => panic!("expected Acquired or Replay, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim may acquire");
    assert_eq!(replays.len(), N - 1);
    assert!(replays.iter().all(|out| *out == winners[0]));
}
