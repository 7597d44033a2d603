//! What the simulator saw, for tests to assert on exactly: requests by route and by the
//! status actually sent (`"reset"`, `"hang"` or `"dropped"` when no status was sent).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of `GET /sim/stats`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Stats {
    /// Route key (`"GET /v1/orders/{id}"`) → status key (`"200"`, `"reset"`...) → count.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Orders ever created since start or reset (including commit-then-fail ones).
    pub orders_created: u64,
    /// Every 429 sent, by the limiter or by a fault rule.
    pub rate_limited: u64,
    /// Replays served from the idempotency store (200 + `Idempotent-Replayed`).
    pub idempotent_replays: u64,
    /// Order submissions that came without an `Idempotency-Key`.
    #[serde(default)]
    pub posts_without_idempotency_key: u64,
    /// Requests that would have created a second order: replays plus 409s.
    #[serde(default)]
    pub duplicates_prevented: u64,
    /// 409 `idempotency_key_in_use` answers.
    #[serde(default)]
    pub idempotency_conflicts: u64,
    /// 422 `idempotency_key_reused` answers.
    #[serde(default)]
    pub idempotency_key_reused: u64,
    /// Faults injected, by kind.
    #[serde(default)]
    pub faults_injected: BTreeMap<String, u64>,
    /// Orders still open now.
    #[serde(default)]
    pub open_orders: u64,
    /// Orders held in memory now (open plus terminal ones not yet pruned).
    #[serde(default)]
    pub stored_orders: u64,
    /// Idempotency keys held in memory now.
    #[serde(default)]
    pub idempotency_keys: u64,
    /// Market ticks since start or reset.
    #[serde(default)]
    pub ticks: u64,
    /// The order streams (`GET /v1/stream`, or `GET /stream` in the Alpaca dialect).
    #[serde(default)]
    pub streams: StreamStats,
    /// The W3C `traceparent` header of the last API request (`/v1` or `/v2`) that
    /// carried one, so a test can see a client's trace reach the broker.
    #[serde(default)]
    pub last_traceparent: Option<String>,
    /// `POST /oauth/token` and its access tokens.
    #[serde(default)]
    pub oauth: OAuthStats,
}

/// What the OAuth token endpoint did, so a test can count refreshes per expiry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct OAuthStats {
    /// Access tokens issued, by either grant.
    pub issued: u64,
    /// Successful `refresh_token` grants (each rotates the refresh token).
    pub refreshed: u64,
    /// Refresh-token families revoked because a spent refresh token came back.
    pub reuse_revoked: u64,
    /// Requests refused with `invalid_token` because their access token had expired.
    pub expired_rejected: u64,
}

/// Stream connections and messages, so a test can tell that a gateway holds one
/// upstream connection however many subscribers it serves, and how much was lost on
/// purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StreamStats {
    /// Connections accepted since start or reset (refused ones are not counted here).
    pub opened: u64,
    /// Connections open now.
    pub open: u64,
    /// Text or binary messages sent (pings and close frames are not), duplicates included.
    pub sent: u64,
    /// Messages skipped by `stream_lose`.
    pub lost: u64,
    /// Connections refused because the key already had one open.
    pub refused: u64,
    /// Quote messages sent, on any stream (also counted in `sent`).
    #[serde(default)]
    pub quotes_sent: u64,
    /// The union of the quote symbols subscribed on the open connections, sorted: what a
    /// gateway holds upstream for all its subscribers together.
    #[serde(default)]
    pub quote_symbols: Vec<String>,
    /// Alpaca market data connections (`/v2/iex`, `/v2/sip`) accepted since start or
    /// reset; they have their own one-per-key limit, apart from the order stream's.
    #[serde(default)]
    pub data_opened: u64,
    /// Alpaca market data connections open now.
    #[serde(default)]
    pub data_open: u64,
    /// Alpaca market data connections refused (406) because the key already had one.
    #[serde(default)]
    pub data_refused: u64,
}

impl Stats {
    /// Requests to `route` with any status.
    pub fn count(&self, route: &str) -> u64 {
        self.requests.get(route).map_or(0, |m| m.values().sum())
    }

    /// Requests to `route` answered with `status`.
    pub fn count_status(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(&status.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to `route` recorded under a non-numeric key (`"reset"`, `"hang"`, `"dropped"`).
    pub fn count_outcome(&self, route: &str, outcome: &str) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(outcome))
            .copied()
            .unwrap_or(0)
    }
}

/// The mutable counters; the gauges (open orders...) are filled in at read time.
#[derive(Default)]
pub(crate) struct Recorder {
    pub stats: Stats,
}

impl Recorder {
    pub(crate) fn record(&mut self, route: &str, status: &str) {
        *self
            .stats
            .requests
            .entry(route.to_owned())
            .or_default()
            .entry(status.to_owned())
            .or_default() += 1;
        if status == "429" {
            self.stats.rate_limited += 1;
        }
    }

    pub(crate) fn fault(&mut self, kind: &str) {
        *self
            .stats
            .faults_injected
            .entry(kind.to_owned())
            .or_default() += 1;
    }
}
