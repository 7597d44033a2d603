//! Resilience of broker calls: retries with backoff for transient failures, a retry
//! budget, and a circuit breaker, as a `Broker` wrapping a `Broker`.
//!
//! Only requests that are safe to repeat are retried: reads, cancels (a cancel of a
//! cancelled order returns it, and cancelling every open order again cancels what is
//! left), and submits, replaces and closes, which always carry an idempotency key the
//! broker dedups on. A 4xx other than 429 is an answer, never retried.

mod backoff;
mod breaker;
mod budget;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) use backoff::{backoff, Schedule};
pub use breaker::{BreakerPolicy, BreakerState, CircuitBreaker};
use budget::RetryBudget;

use crate::broker::{Broker, BrokerError, CallLayer, Layered, Route};

/// How hard to try. Fixed rather than configured: `services` builds `Default`,
/// whose numbers docs/resilience.md states.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// A call gives up retrying once the next wait would end past this.
    pub deadline: Duration,
    /// Extra calls retries may add, as a fraction of first attempts.
    pub budget_ratio: f64,
    pub breaker: BreakerPolicy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            deadline: Duration::from_secs(10),
            budget_ratio: 0.1,
            breaker: BreakerPolicy::default(),
        }
    }
}

/// Retries, the retry budget and the circuit breaker around each call to the
/// adapter: the `CallLayer` of [`ResilientBroker`].
pub struct Resilience {
    policy: RetryPolicy,
    budget: RetryBudget,
    breaker: Arc<CircuitBreaker>,
}

/// The adapter with retries and the circuit breaker in front of it.
pub type ResilientBroker = Layered<Resilience>;

impl Resilience {
    pub fn new(policy: RetryPolicy) -> Self {
        Resilience {
            policy,
            budget: RetryBudget::new(policy.budget_ratio, 10),
            breaker: Arc::new(CircuitBreaker::new(policy.breaker)),
        }
    }

    /// For `/readyz` and metrics.
    pub fn breaker(&self) -> Arc<CircuitBreaker> {
        self.breaker.clone()
    }
}

impl CallLayer for Resilience {
    /// Sends `op` until it succeeds, fails for good, or the attempts, the deadline
    /// or the retry budget run out. This is the inner of the two loops a submit
    /// runs: see `orders::resend` for the outer one and the one deadline of both.
    async fn call<T, F, Fut>(
        &self,
        route: Route,
        _inner: &dyn Broker,
        op: F,
    ) -> Result<T, BrokerError>
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, BrokerError>> + Send,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let Some(permit) = self.breaker.try_acquire() else {
                return Err(BrokerError::CircuitOpen);
            };
            let result = op().await;
            let down = matches!(&result, Err(e) if marks_broker_down(e));
            // A failed submit (or replace, or close) does not count toward opening
            // the circuit: its failures are the outcome-unknown cases the orders
            // layer resolves by resending under the key, and a burst of them says
            // more about that one route than about whether the broker answers reads.
            // It is still refused while open.
            if !(down && route.resends_on_unknown_outcome()) {
                permit.record(!down);
            }
            if attempt == 0 {
                self.budget.deposit();
            }
            let err = match result {
                Ok(value) => return Ok(value),
                Err(e) if !is_transient(&e) => return Err(e),
                Err(e) => e,
            };
            let wait = match &err {
                BrokerError::RateLimited {
                    retry_after: Some(after),
                } => *after,
                _ => backoff(attempt),
            };
            attempt += 1;
            if attempt >= self.policy.max_attempts
                || started.elapsed() + wait > self.policy.deadline
                || !self.budget.try_withdraw()
            {
                return Err(err);
            }
            tracing::debug!(%route, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying broker call");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Worth another try: the broker may answer differently in a moment.
fn is_transient(err: &BrokerError) -> bool {
    match err {
        BrokerError::RateLimited { .. } | BrokerError::Timeout => true,
        BrokerError::Unavailable { status, .. } => {
            matches!(status, None | Some(502) | Some(503) | Some(504))
        }
        _ => false,
    }
}

/// Says the broker itself is failing (not that it refused us): counts toward the breaker.
fn marks_broker_down(err: &BrokerError) -> bool {
    matches!(err, BrokerError::Unavailable { .. } | BrokerError::Timeout)
}
