//! Backoff for resending a mutation whose outcome we must learn.

use std::time::Duration;

const BASE: Duration = Duration::from_millis(50);
const CAP: Duration = Duration::from_secs(1);

/// Exponential backoff with full jitter: `random(0, min(cap, base * 2^attempt))`.
/// Jitter keeps many clients that failed together from resending together.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(CAP);
    ceiling.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_the_exponential_ceiling_and_the_cap() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            let ceiling = BASE
                .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
                .min(CAP);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
    }
}
