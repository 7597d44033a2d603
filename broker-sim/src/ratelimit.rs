//! A fixed window per API key, like a typical retail broker: the window opens with the
//! key's first request and every response says how much of it is left.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};

pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    /// Per account: (window start, requests counted in it).
    windows: Vec<Option<(SystemTime, u32)>>,
}

/// The limiter's verdict, also rendered as `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quota {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds at which the window resets.
    pub reset: u64,
    pub retry_after: u64,
}

impl Quota {
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset));
    }
}

fn unix_ceil(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl RateLimiter {
    pub(crate) fn new(accounts: usize, limit: u32, window_secs: u64) -> Self {
        RateLimiter {
            limit,
            // Clamped to ten years so that window arithmetic on SystemTime cannot overflow.
            window: Duration::from_secs(window_secs.clamp(1, 10 * 365 * 86_400)),
            windows: vec![None; accounts],
        }
    }

    /// Counts one request for `acct`; a rejected request does not use up quota.
    pub(crate) fn check(&mut self, acct: usize, now: SystemTime) -> Quota {
        let slot = &mut self.windows[acct];
        let (start, count) = match *slot {
            Some((start, count)) if now < start + self.window => (start, count),
            _ => (now, 0),
        };
        let allowed = count < self.limit;
        let count = if allowed { count + 1 } else { count };
        *slot = Some((start, count));
        let reset_at = start + self.window;
        let retry_after = reset_at
            .duration_since(now)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(1)
            .max(1);
        Quota {
            allowed,
            limit: self.limit,
            remaining: self.limit - count,
            reset: unix_ceil(reset_at),
            retry_after,
        }
    }

    /// What the headers say without counting: for responses to unauthenticated requests.
    pub(crate) fn peek(&self, now: SystemTime) -> Quota {
        Quota {
            allowed: true,
            limit: self.limit,
            remaining: self.limit,
            reset: unix_ceil(now + self.window),
            retry_after: 0,
        }
    }
}
