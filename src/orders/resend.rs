//! How a submit or cancel is sent again until its outcome is known: the contract
//! between the two retry loops a mutation runs through, and its one deadline.
//!
//! - The inner loop is `resilience::Resilience::call`, around each single broker
//!   call of every kind: it retries what is transient at the wire (a 502/503/504,
//!   a reset, a timeout, a 429 with `Retry-After`) a few times (`RetryPolicy`:
//!   3 attempts, within a retry budget), so a blip costs no round trip to the
//!   client. It knows nothing of orders.
//! - The outer loop is here ([`Resend`]), around the whole mutation: when the inner
//!   loop gives up with an outcome still unknown (or the broker says our own
//!   earlier send is still being processed, or rate-limits us), the submit is sent
//!   again under the same idempotency key, which the broker dedups, until the
//!   broker's answer is known.
//!
//! One deadline bounds both: `idempotency.resend_deadline` (`OrderSettings::
//! deadline`, 15 s by default). Every send runs under what is left of it, inner
//! retries included, and no wait starts that would end past it. Past it the
//! client gets `OUTCOME_UNKNOWN` (its retry with the same key settles it) for a
//! submit that may have been placed. The claim on the key (`idempotency.lease`)
//! must outlive this deadline, which the config checks, so no second attempt
//! with the same key can start while this one may still send.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::broker::BrokerError;
use crate::resilience::backoff;

/// One mutation's sends, against its deadline.
pub(super) struct Resend {
    deadline: Instant,
    attempt: u32,
}

/// The deadline passed while a send was in flight: it may or may not have reached
/// the broker.
pub(super) struct DeadlinePassed;

impl Resend {
    pub(super) fn new(deadline: Duration) -> Resend {
        Resend {
            deadline: Instant::now() + deadline,
            attempt: 0,
        }
    }

    /// Whether this is the first send (a broker replay then means an earlier
    /// attempt, not ours, placed the order).
    pub(super) fn first(&self) -> bool {
        self.attempt == 0
    }

    /// One send, bounded by what is left of the deadline.
    pub(super) async fn send<T>(
        &self,
        call: impl Future<Output = Result<T, BrokerError>>,
    ) -> Result<Result<T, BrokerError>, DeadlinePassed> {
        tokio::time::timeout_at(self.deadline, call)
            .await
            .map_err(|_| DeadlinePassed)
    }

    /// Waits before the next send: `retry_after` when the broker said how long,
    /// else the backoff of this attempt. `Err` with that wait, without waiting, when
    /// it would end past the deadline (a client can be told when to come back).
    pub(super) async fn wait(&mut self, retry_after: Option<Duration>) -> Result<(), Duration> {
        let wait = retry_after.unwrap_or_else(|| backoff(self.attempt));
        self.attempt += 1;
        if Instant::now() + wait > self.deadline {
            return Err(wait);
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}
