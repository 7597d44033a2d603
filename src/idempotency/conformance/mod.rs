//! The behaviour every [`IdempotencyStore`] must have, as generic async checks.
//!
//! Public (hidden from docs) rather than `cfg(test)` so that a backend tested from
//! `tests/` against a real server (Redis) runs the very same checks as the memory
//! store. Each check uses fresh random keys and scopes, so one store can serve them all.
//!
//! `unit` scales every wait and lease: tens of milliseconds in real time (the memory
//! store's tests use 20 ms; a Redis store whose leases run on the server clock may
//! want 100 ms), or a second on a paused tokio clock. Short leases are only ever
//! waited out, never raced; the leases and waits a check must not reach are `LONG`
//! units. Assertions on time are only lower bounds ("waited at least `wait`") or
//! "eventually", never wall-clock ceilings, so a loaded machine is slower, not flaky.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Claim, ClaimToken, Fingerprint, IdempotencyStore, StoredOutcome};

mod basics;
mod expiry;

pub use basics::*;
pub use expiry::*;

/// Long enough that a check never hits it unless the store fails to wake a waiter.
const LONG: u32 = 1000;

fn scope() -> String {
    format!("acct-{}", Uuid::new_v4())
}

fn fp(input: &str) -> Fingerprint {
    Fingerprint::of(input.as_bytes())
}

fn outcome(body: &str) -> StoredOutcome {
    StoredOutcome(body.as_bytes().to_vec())
}

fn acquired(claim: Claim) -> ClaimToken {
    match claim {
        Claim::Acquired(token) => token,
        other => panic!("expected Acquired, got {other:?}"),
    }
}

async fn claim<S: IdempotencyStore>(
    store: &S,
    scope: &str,
    key: Uuid,
    input: &str,
    wait: Duration,
    lease: Duration,
) -> Claim {
    store
        .claim(scope, key, fp(input), wait, lease)
        .await
        .expect("store available")
}

/// Claims with no wait until the key is acquired, for states that end by a clock the
/// test does not control (a server-side lease, a cache TTL).
async fn eventually_acquired<S: IdempotencyStore>(
    store: &S,
    scope: &str,
    key: Uuid,
    input: &str,
    poll: Duration,
    give_up: Duration,
) -> ClaimToken {
    let start = Instant::now();
    loop {
        match claim(store, scope, key, input, Duration::ZERO, give_up).await {
            Claim::Acquired(token) => return token,
            other if start.elapsed() > give_up => panic!("still {other:?} after {give_up:?}"),
            _ => tokio::time::sleep(poll).await,
        }
    }
}
