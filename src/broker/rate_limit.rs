use std::time::SystemTime;

/// The broker's budget as its `X-RateLimit-*` headers last reported it. Kept by the
/// adapter on every response so a throttle can pace calls before the broker says 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSnapshot {
    pub limit: u32,
    pub remaining: u32,
    /// When the broker's window resets (from `X-RateLimit-Reset`, unix seconds).
    pub reset_at: SystemTime,
    /// When we saw these headers.
    pub observed_at: SystemTime,
}
