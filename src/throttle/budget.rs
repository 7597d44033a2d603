//! The arithmetic of one broker rate-limit window, without clocks or locks, so every
//! rule is unit-tested with made-up instants.
//!
//! We count our own calls as we start them (the broker's `X-RateLimit-Remaining`
//! lags behind calls still in flight), and reconcile with the broker's headers by
//! always believing whichever of the two says more was spent: another client of
//! the same key, or a retry underneath us, shows up in the headers.

use std::time::{Duration, Instant, SystemTime};

use crate::broker::RateLimitSnapshot;

/// Who is asking for a broker call. Order matters: each may spend more of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Priority {
    /// The refresh of a value the cache could serve stale instead: paced across the
    /// window, and leaving a quarter of the read share to reads with nothing cached.
    Refresh,
    /// A read with nothing cached to fall back on: the whole read share.
    Read,
    /// The first read of something a mutation just changed: may use half the reserve.
    Confirm,
    /// A submit or cancel: may use the whole window.
    Mutation,
}

#[derive(Debug)]
pub(crate) struct Budget {
    limit: u32,
    reserve_percent: u32,
    window: Duration,
    /// The current window, `None` before the first call.
    start: Option<Instant>,
    end: Option<Instant>,
    used: u32,
    /// A 429's `Retry-After`: nothing is sent before this.
    blocked_until: Option<Instant>,
    last_observed: Option<SystemTime>,
}

impl Budget {
    pub(super) fn new(limit: u32, window: Duration, reserve_percent: u32) -> Self {
        Budget {
            limit: limit.max(2),
            reserve_percent: reserve_percent.min(90),
            window: window.max(Duration::from_millis(1)),
            start: None,
            end: None,
            used: 0,
            blocked_until: None,
            last_observed: None,
        }
    }

    /// Calls kept back from reads; at least one whenever the limit allows a read too.
    fn reserve(&self) -> u32 {
        let wanted = (u64::from(self.limit) * u64::from(self.reserve_percent)).div_ceil(100);
        (wanted as u32).clamp(u32::from(self.reserve_percent > 0), self.limit - 1)
    }

    fn roll(&mut self, now: Instant) {
        if self.end.is_none_or(|end| now >= end) {
            self.start = Some(now);
            self.end = Some(now + self.window);
            self.used = 0;
        }
    }

    /// Calls refreshes may make in a window, and of those how many at once.
    fn refresh_share(&self) -> (u32, u32) {
        let reads = self.limit - self.reserve();
        let share = (reads - reads / 4).max(1);
        (share, share.div_ceil(2))
    }

    /// How many calls `priority` may have made by `now` in this window. Refreshes
    /// get half their share at once and the rest spread over the window, so a burst
    /// at the start of a window cannot leave the rest of it with nothing to refresh
    /// with, nor a read of something new waiting for the next window.
    fn cap(&self, priority: Priority, now: Instant) -> u32 {
        let reserve = self.reserve();
        match priority {
            Priority::Mutation => self.limit,
            Priority::Confirm => self.limit - reserve / 2,
            Priority::Read => self.limit - reserve,
            Priority::Refresh => {
                let (share, burst) = self.refresh_share();
                let elapsed = self.elapsed(now).as_secs_f64() / self.window.as_secs_f64();
                let paced = burst + (f64::from(share - burst) * elapsed.min(1.0)).ceil() as u32;
                paced.min(share)
            }
        }
    }

    /// The shared budget's view of `cap`: (cap at the window's end, cap at its
    /// start, window). Only refreshes are paced, so only they differ.
    pub(super) fn caps(&self, priority: Priority) -> (u32, u32, Duration) {
        let reserve = self.reserve();
        let (share, burst) = match priority {
            Priority::Mutation => (self.limit, self.limit),
            Priority::Confirm => (self.limit - reserve / 2, self.limit - reserve / 2),
            Priority::Read => (self.limit - reserve, self.limit - reserve),
            Priority::Refresh => self.refresh_share(),
        };
        (share, burst, self.window)
    }

    /// What the broker's headers say of the current window: calls spent and the
    /// time to its reset, if it has not already ended.
    pub(super) fn reading(snap: &RateLimitSnapshot, wall: SystemTime) -> Option<(u32, Duration)> {
        let reset_in = snap.reset_at.duration_since(wall).ok()?;
        (!reset_in.is_zero()).then(|| (snap.limit.saturating_sub(snap.remaining), reset_in))
    }

    fn elapsed(&self, now: Instant) -> Duration {
        self.start
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    /// Takes one call if `priority` may make it now; otherwise says when to ask again.
    pub(super) fn try_take(&mut self, priority: Priority, now: Instant) -> Result<(), Instant> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until);
            }
            self.blocked_until = None;
        }
        self.roll(now);
        if self.used < self.cap(priority, now) {
            self.used += 1;
            return Ok(());
        }
        Err(self.next_chance(priority, now))
    }

    /// When `cap` will next exceed `used`: a later pacing step for refreshes, else
    /// the next window.
    fn next_chance(&self, priority: Priority, now: Instant) -> Instant {
        let end = self.end.unwrap_or(now);
        let (share, burst) = self.refresh_share();
        if priority == Priority::Refresh && self.used < share && share > burst {
            let step = self.window.as_secs_f64() / f64::from(share - burst);
            let at = Duration::from_secs_f64(f64::from(self.used - burst) * step);
            let start = self.start.unwrap_or(now);
            return (start + at + Duration::from_millis(1)).clamp(now, end);
        }
        end.max(now + Duration::from_millis(1))
    }

    /// Learns from the broker's headers. The broker's reset (rounded up to whole
    /// seconds) is never earlier than its true reset, so adopting it is safe.
    pub(super) fn observe(&mut self, snap: &RateLimitSnapshot, now: Instant, wall: SystemTime) {
        if self
            .last_observed
            .is_some_and(|seen| snap.observed_at < seen)
        {
            return;
        }
        self.last_observed = Some(snap.observed_at);
        let Ok(reset_in) = snap.reset_at.duration_since(wall) else {
            return; // a window that has already ended: nothing to learn about this one
        };
        if reset_in.is_zero() {
            return;
        }
        self.limit = snap.limit.max(2);
        let spent = snap.limit.saturating_sub(snap.remaining);
        // The first call of a window sees the whole window ahead of it; later calls
        // only a part, which can only show that the window is longer than we thought.
        self.window = if spent <= 1 {
            reset_in
        } else {
            self.window.max(reset_in)
        };
        let end = now + reset_in;
        self.end = Some(end);
        self.start = Some(end.checked_sub(self.window).unwrap_or(now).min(now));
        self.used = self.used.max(spent);
    }

    /// The broker said 429 anyway: nothing more until it said to come back.
    pub(super) fn rate_limited(&mut self, retry_after: Option<Duration>, now: Instant) {
        // The broker's Retry-After is its word on when to come back; only without
        // one do we assume the whole window is spent. Marking the window spent after
        // a short Retry-After would stall every read for the rest of a 60 s window
        // because of one 429 burst.
        let until = match retry_after {
            Some(after) => now + after,
            None => {
                self.used = self.limit;
                self.end.unwrap_or(now).max(now + Duration::from_secs(1))
            }
        };
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
