//! A circuit breaker per broker: when most recent calls failed, stop calling a broker
//! that is down (fail fast, let the cache serve stale reads), probe it once after a
//! pause, and close again on success.
//!
//! It opens on the failure *ratio* of a sliding window, not on a run of consecutive
//! failures: under heavy traffic a broker failing one call in three produces runs of
//! five failures many times a minute, and opening on those would turn a degraded
//! broker into an unavailable one.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    /// The outcomes of the most recent calls, `true` for a failure.
    Closed {
        recent: VecDeque<bool>,
    },
    Open {
        until: Instant,
    },
    /// One probe is allowed through; everyone else fails fast until it answers.
    HalfOpen {
        probing: bool,
    },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    policy: BreakerPolicy,
}

/// When to open, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct BreakerPolicy {
    /// How many recent calls the failure ratio is taken over.
    pub window: usize,
    /// Fewer calls than this in the window never open the circuit (one failure of
    /// one call is not an outage).
    pub min_calls: usize,
    /// The failure ratio (0..1] over the window that opens the circuit.
    pub failure_ratio: f64,
    /// How long the circuit stays open before a probe.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            window: 50,
            min_calls: 20,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(2),
        }
    }
}

/// Permission to make one call. A probe permit dropped without a result (the
/// caller's future was cancelled) frees the probe slot so the next call can probe.
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        CircuitBreaker {
            state: Mutex::new(State::Closed {
                recent: VecDeque::new(),
            }),
            policy: BreakerPolicy {
                window: policy.window.max(1),
                min_calls: policy.min_calls.clamp(1, policy.window.max(1)),
                ..policy
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// `None`: the circuit is open (or a probe is already out); do not call.
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() >= until => {
                *state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } | State::HalfOpen { probing: true } => return None,
            State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                true
            }
        };
        Some(Permit {
            breaker: self,
            probe,
            done: false,
        })
    }

    fn record(&self, probe: bool, healthy: bool) {
        let mut state = self.lock();
        let open = match &mut *state {
            State::Closed { recent } => {
                recent.push_back(!healthy);
                if recent.len() > self.policy.window {
                    recent.pop_front();
                }
                let failures = recent.iter().filter(|f| **f).count();
                recent.len() >= self.policy.min_calls
                    && failures as f64 >= self.policy.failure_ratio * recent.len() as f64
            }
            _ if probe => !healthy,
            // A call that began before the circuit opened ends late: the probe decides.
            _ => return,
        };
        *state = if open {
            tracing::warn!(
                open_for_ms = self.policy.open_for.as_millis() as u64,
                "broker circuit opened"
            );
            State::Open {
                until: Instant::now() + self.policy.open_for,
            }
        } else if probe {
            State::Closed {
                recent: VecDeque::new(),
            }
        } else {
            return;
        };
    }
}

impl Permit<'_> {
    /// Reports the call's outcome: `healthy` false for the failures that say the
    /// broker is down (5xx, timeouts, connection errors), true otherwise.
    pub(crate) fn record(mut self, healthy: bool) {
        self.done = true;
        self.breaker.record(self.probe, healthy);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe && !self.done {
            let mut state = self.breaker.lock();
            if let State::HalfOpen { probing } = &mut *state {
                *probing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &CircuitBreaker) {
        b.try_acquire().expect("allowed").record(false);
    }

    fn policy(window: usize, min_calls: usize) -> BreakerPolicy {
        BreakerPolicy {
            window,
            min_calls,
            failure_ratio: 0.5,
            open_for: Duration::from_secs(5),
        }
    }

    fn succeed(b: &CircuitBreaker) {
        b.try_acquire().expect("allowed").record(true);
    }

    #[tokio::test(start_paused = true)]
    async fn a_degraded_broker_stays_closed_a_failing_one_opens() {
        let b = CircuitBreaker::new(policy(10, 4));
        for _ in 0..30 {
            succeed(&b);
            succeed(&b);
            fail(&b);
        }
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "one failure in three is degraded, not down"
        );
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open, "5 failures of the last 10");
    }

    #[tokio::test(start_paused = true)]
    async fn too_few_calls_never_open() {
        let b = CircuitBreaker::new(policy(10, 4));
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn open_fails_fast_probes_once_then_closes() {
        let b = CircuitBreaker::new(policy(3, 3));
        for _ in 0..3 {
            fail(&b);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_none(), "open fails fast");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.try_acquire().expect("one probe");
        assert!(b.try_acquire().is_none(), "only one probe at a time");
        probe.record(true);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "closing forgets the old failures"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_a_cancelled_probe_frees_the_slot() {
        let b = CircuitBreaker::new(policy(1, 1));
        fail(&b);
        tokio::time::advance(Duration::from_secs(5)).await;
        b.try_acquire().unwrap().record(false);
        assert_eq!(b.state(), BreakerState::Open, "failed probe reopens");
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(b.try_acquire().unwrap());
        assert!(
            b.try_acquire().is_some(),
            "a cancelled probe does not wedge the breaker"
        );
    }
}
