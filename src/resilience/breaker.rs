//! A circuit breaker per broker: after a run of failures, stop calling a broker that
//! is down (fail fast, let the cache serve stale reads), probe it once after a pause,
//! and close again on success.

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
    Closed {
        failures: u32,
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
    /// Consecutive failures that open the circuit.
    threshold: u32,
    /// How long the circuit stays open before a probe.
    open_for: Duration,
}

/// Permission to make one call. A probe permit dropped without a result (the
/// caller's future was cancelled) frees the probe slot so the next call can probe.
pub(crate) struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        CircuitBreaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold: threshold.max(1),
            open_for,
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
        *state = match (&*state, healthy) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.threshold && !probe => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            // A call that began before the circuit opened ends late: the probe decides.
            (State::HalfOpen { .. } | State::Open { .. }, false) if !probe => return,
            (_, false) => {
                tracing::warn!(
                    open_for_ms = self.open_for.as_millis() as u64,
                    "broker circuit opened"
                );
                State::Open {
                    until: Instant::now() + self.open_for,
                }
            }
        };
    }
}

impl Permit<'_> {
    /// Reports the call's outcome: `healthy` false for the failures that say the
    /// broker is down (5xx, timeouts, connection errors), true otherwise.
    pub fn record(mut self, healthy: bool) {
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

    #[tokio::test(start_paused = true)]
    async fn opens_after_a_run_probes_once_then_closes() {
        let b = CircuitBreaker::new(3, Duration::from_secs(5));
        fail(&b);
        fail(&b);
        b.try_acquire().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Closed, "a success resets the run");
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
        assert!(b.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_a_cancelled_probe_frees_the_slot() {
        let b = CircuitBreaker::new(1, Duration::from_secs(5));
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
