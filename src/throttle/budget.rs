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
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::{Budget, Priority};
    use crate::broker::RateLimitSnapshot;

    const SEC: Duration = Duration::from_secs(1);

    fn take_all(b: &mut Budget, p: Priority, now: Instant) -> u32 {
        let mut n = 0;
        while b.try_take(p, now).is_ok() {
            n += 1;
        }
        n
    }

    #[test]
    fn reads_never_touch_the_reserve_and_mutations_get_it() {
        let t0 = Instant::now();
        let mut b = Budget::new(20, 10 * SEC, 20);
        // Refreshes: half of their 12 at once, the rest as the window goes by.
        assert_eq!(take_all(&mut b, Priority::Refresh, t0), 6);
        assert_eq!(take_all(&mut b, Priority::Refresh, t0 + 9 * SEC), 6);
        // Reads of something new may use the rest of the read share (16) at any time.
        assert_eq!(take_all(&mut b, Priority::Read, t0 + 9 * SEC), 4);
        // Confirming reads may use half of the reserve, mutations the rest.
        assert_eq!(take_all(&mut b, Priority::Confirm, t0 + 9 * SEC), 2);
        assert_eq!(take_all(&mut b, Priority::Mutation, t0 + 9 * SEC), 2);
        // Spent: the next chance is the next window.
        let next = b.try_take(Priority::Mutation, t0 + 9 * SEC).unwrap_err();
        assert_eq!(next, t0 + 10 * SEC);
        assert!(
            b.try_take(Priority::Refresh, t0 + 10 * SEC).is_ok(),
            "new window"
        );
    }

    #[test]
    fn refreshes_leave_room_for_reads_of_something_new() {
        let t0 = Instant::now();
        let mut b = Budget::new(20, 10 * SEC, 20);
        // Even at the end of the window, refreshes stop at 12 of the 16 reads.
        assert_eq!(take_all(&mut b, Priority::Refresh, t0), 6);
        let late = t0 + 10 * SEC - SEC / 10;
        assert_eq!(take_all(&mut b, Priority::Refresh, late), 6);
        assert_eq!(take_all(&mut b, Priority::Read, late), 4);
    }

    #[test]
    fn a_paced_refresh_is_told_when_its_next_slot_opens() {
        let t0 = Instant::now();
        let mut b = Budget::new(20, 10 * SEC, 20);
        assert_eq!(take_all(&mut b, Priority::Refresh, t0), 6);
        let next = b.try_take(Priority::Refresh, t0).unwrap_err();
        assert!(next > t0 && next < t0 + 2 * SEC, "{:?}", next - t0);
        assert!(b.try_take(Priority::Refresh, next).is_ok());
    }

    #[test]
    fn headers_that_show_more_spending_win() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut b = Budget::new(200, 60 * SEC, 20);
        b.try_take(Priority::Read, t0).unwrap();
        // Someone else spent 195 of the key's 200.
        let snap = RateLimitSnapshot {
            limit: 200,
            remaining: 5,
            reset_at: wall + 30 * SEC,
            observed_at: wall,
        };
        b.observe(&snap, t0, wall);
        assert!(b.try_take(Priority::Read, t0).is_err());
        assert_eq!(take_all(&mut b, Priority::Mutation, t0), 5);
        // ... and the window ends when the broker says, not 60 s after our first call.
        assert!(b.try_take(Priority::Read, t0 + 30 * SEC).is_ok());
    }

    #[test]
    fn headers_teach_a_smaller_limit_and_window() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut b = Budget::new(200, 60 * SEC, 20);
        b.try_take(Priority::Read, t0).unwrap();
        let snap = RateLimitSnapshot {
            limit: 20,
            remaining: 19,
            reset_at: wall + 2 * SEC,
            observed_at: wall,
        };
        b.observe(&snap, t0, wall);
        // 16 reads in the window in all, of which one is spent.
        assert_eq!(
            take_all(&mut b, Priority::Read, t0 + 2 * SEC - SEC / 100),
            15
        );
    }

    #[test]
    fn a_snapshot_of_an_ended_window_or_out_of_order_is_ignored() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut b = Budget::new(20, 10 * SEC, 20);
        let fresh = RateLimitSnapshot {
            limit: 20,
            remaining: 18,
            reset_at: wall + 5 * SEC,
            observed_at: wall,
        };
        b.observe(&fresh, t0, wall);
        let older = RateLimitSnapshot {
            remaining: 0,
            observed_at: wall - SEC,
            ..fresh
        };
        b.observe(&older, t0, wall);
        let ended = RateLimitSnapshot {
            remaining: 0,
            reset_at: wall - SEC,
            observed_at: wall + SEC,
            ..fresh
        };
        b.observe(&ended, t0, wall);
        assert!(b.try_take(Priority::Read, t0).is_ok());
    }

    #[test]
    fn a_429_blocks_everyone_until_retry_after() {
        let t0 = Instant::now();
        let mut b = Budget::new(20, 10 * SEC, 20);
        b.rate_limited(Some(3 * SEC), t0);
        assert_eq!(b.try_take(Priority::Mutation, t0 + SEC), Err(t0 + 3 * SEC));
        assert!(b.try_take(Priority::Mutation, t0 + 3 * SEC).is_ok());
    }

    #[test]
    fn a_short_retry_after_does_not_spend_the_rest_of_the_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(100, 60 * SEC, 20);
        assert!(b.try_take(Priority::Read, t0).is_ok());
        b.rate_limited(Some(SEC), t0);
        assert_eq!(b.try_take(Priority::Read, t0), Err(t0 + SEC));
        assert!(
            b.try_take(Priority::Read, t0 + SEC).is_ok(),
            "reads resume after Retry-After"
        );
    }

    #[test]
    fn a_429_without_retry_after_waits_for_the_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(100, 60 * SEC, 20);
        assert!(b.try_take(Priority::Read, t0).is_ok());
        b.rate_limited(None, t0);
        assert!(b.try_take(Priority::Read, t0 + 2 * SEC).is_err());
    }

    #[test]
    fn a_zero_reserve_gives_reads_everything() {
        let t0 = Instant::now();
        let mut b = Budget::new(10, SEC, 0);
        assert_eq!(take_all(&mut b, Priority::Read, t0), 10);
    }
}
