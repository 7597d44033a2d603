//! A retry budget: retries may add at most a fixed fraction of extra calls, so a
//! broker outage is not multiplied by every client's retries (the gRPC and Finagle
//! "retry budget" design).

use std::sync::Mutex;

/// Thousandths of a retry: integer arithmetic, so 1000 deposits of 10 % are
/// exactly 100 retries.
const ONE: u64 = 1000;

/// Tokens are earned by first attempts and spent by retries.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    milli_tokens: Mutex<u64>,
    /// What a first attempt earns: the fraction of extra calls retries may add.
    earn: u64,
    /// Caps what quiet periods save up, so a burst of failures after a calm hour
    /// cannot spend more than a bounded number of retries at once.
    cap: u64,
}

impl RetryBudget {
    /// `ratio`: extra calls per first attempt (0.1 = at most 10 % more calls).
    /// `initial`: retries a fresh gateway may spend before traffic has earned any.
    pub(super) fn new(ratio: f64, initial: u64) -> Self {
        let earn = (ratio.clamp(0.0, 1.0) * ONE as f64).round() as u64;
        RetryBudget {
            milli_tokens: Mutex::new(initial * ONE),
            earn,
            cap: (initial * ONE).max(earn * 1000),
        }
    }

    /// A request's first attempt.
    pub(super) fn deposit(&self) {
        let mut t = self.milli_tokens.lock().unwrap_or_else(|p| p.into_inner());
        *t = (*t + self.earn).min(self.cap);
    }

    /// Spends one retry if the budget has it.
    pub(super) fn try_withdraw(&self) -> bool {
        let mut t = self.milli_tokens.lock().unwrap_or_else(|p| p.into_inner());
        if *t >= ONE {
            *t -= ONE;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(budget: &RetryBudget) -> usize {
        std::iter::from_fn(|| budget.try_withdraw().then_some(())).count()
    }

    #[test]
    fn retries_are_the_ratio_of_first_attempts_plus_the_initial_allowance() {
        let budget = RetryBudget::new(0.1, 10);
        for _ in 0..500 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 60, "500 requests at 10 % earn 50, plus 10");
        assert!(!budget.try_withdraw(), "an exhausted budget refuses");
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 1, "new traffic earns new retries");
    }

    #[test]
    fn savings_are_capped() {
        let budget = RetryBudget::new(0.1, 10);
        for _ in 0..1_000_000 {
            budget.deposit();
        }
        assert_eq!(drain(&budget), 100);
    }
}
