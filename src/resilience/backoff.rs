//! Exponential backoff with full jitter, shared by every layer that resends.

use std::time::Duration;

const BASE: Duration = Duration::from_millis(50);
const CAP: Duration = Duration::from_secs(2);

/// A backoff schedule: waits grow as `min(cap, base * 2^attempt)` and are drawn
/// with full jitter. REST resends use `REST`; a broker stream reconnects on a
/// slower one of its own, since a reconnect storm is what gets a key banned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    pub base: Duration,
    pub cap: Duration,
}

impl Schedule {
    pub(crate) const REST: Schedule = Schedule {
        base: BASE,
        cap: CAP,
    };

    /// The upper bound of the wait before retry number `attempt` (0-based).
    pub(crate) fn ceiling(self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(self.cap)
    }

    /// `random(0, ceiling(attempt))`. Full jitter spreads out many clients that
    /// failed together, so their retries do not arrive together (AWS architecture
    /// blog, "Exponential Backoff And Jitter").
    pub(crate) fn draw(self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(rand::random::<f64>())
    }
}

/// The REST resend schedule, drawn.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Schedule::REST.draw(attempt)
}

#[cfg(test)]
fn ceiling(attempt: u32) -> Duration {
    Schedule::REST.ceiling(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_then_caps() {
        let ms: Vec<u128> = (0..8).map(|a| ceiling(a).as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(ceiling(100), CAP);
    }

    #[test]
    fn jitter_stays_within_the_ceiling_and_varies() {
        let draws: Vec<Duration> = (0..200).map(|_| backoff(3)).collect();
        assert!(draws.iter().all(|d| *d <= ceiling(3)));
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert!(distinct.len() > 100, "jitter draws should spread");
    }
}
