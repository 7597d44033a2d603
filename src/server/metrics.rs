//! `GET /metrics`: every series of the gateway's registry (`crate::metrics`), with
//! the state other layers keep read at each scrape ([`LayerState`]): cache and
//! throttle counters, broker calls after the cache, the circuit breaker, Redis, and
//! the per-key rate-limit buckets. OpenMetrics text for a scraper that accepts it
//! (Prometheus does), else the Prometheus text format 0.0.4.
//!
//! Unauthenticated, like `/healthz`: scrapers rarely carry API keys, and nothing
//! here is secret (key ids, never keys). Firewall it if route names leak too much.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::ratelimit::RateLimiter;
use super::AppState;
use crate::cache::CacheStatsHandle;
use crate::cluster::Redis;
use crate::metrics::Format;
use crate::resilience::{BreakerState, CircuitBreaker};
use crate::tokens::TokenSource;

pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = match headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
    {
        true => Format::OpenMetrics,
        false => Format::PrometheusText,
    };
    let body = state.services.metrics.encode(format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// What the layers beneath keep for themselves, reported as it is at the scrape.
pub(crate) struct LayerState {
    pub(crate) cache: CacheStatsHandle,
    /// Each account's breaker, by account id.
    pub(crate) breakers: Vec<(String, Arc<CircuitBreaker>)>,
    /// Each OAuth account's tokens, by account id.
    pub(crate) tokens: Vec<(String, Arc<TokenSource>)>,
    pub(crate) redis: Option<Arc<Redis>>,
    pub(crate) ratelimit: Arc<RateLimiter>,
}

impl std::fmt::Debug for LayerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerState").finish_non_exhaustive()
    }
}

impl Collector for LayerState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.cache.snapshot();
        {
            let mut family = encoder.encode_descriptor(
                "brokergraph_broker_calls",
                "Calls to the broker by route (after the cache), reads and writes.",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (route, n) in &c.broker_calls {
                let labels = [("route", route.as_str())];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, value, help) in [
            (
                "brokergraph_broker_rate_limited",
                c.broker_429s,
                "429s the broker sent despite the throttle.",
            ),
            (
                "brokergraph_cache_hits",
                c.hits,
                "Reads answered from a fresh cached value.",
            ),
            (
                "brokergraph_cache_misses",
                c.misses,
                "Reads that started a broker call.",
            ),
            (
                "brokergraph_cache_coalesced",
                c.coalesced,
                "Reads that joined another read's broker call.",
            ),
            (
                "brokergraph_cache_stale",
                c.stale_served,
                "Reads answered with a stale value because the broker could not be asked.",
            ),
            (
                "brokergraph_cache_l2_hits",
                c.l2_hits,
                "Cache misses answered from the L2 cache replicas share in Redis.",
            ),
            (
                "brokergraph_cache_l2_misses",
                c.l2_misses,
                "Cache misses the L2 cache could not answer (then read from the broker).",
            ),
            (
                "brokergraph_cache_invalidations",
                c.invalidations,
                "Mutations that invalidated an account's cached state.",
            ),
            (
                "brokergraph_throttle_waits",
                c.throttle_waits,
                "Broker calls that waited for rate-limit budget.",
            ),
            (
                "brokergraph_throttle_refusals",
                c.throttle_refusals,
                "Broker calls refused for lack of budget (served stale or RATE_LIMITED).",
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "brokergraph_breaker_state",
                "Broker circuit breaker of each account: 1 for the current state.",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (account, breaker) in &self.breakers {
                let now = breaker.state();
                for s in [
                    BreakerState::Closed,
                    BreakerState::Open,
                    BreakerState::HalfOpen,
                ] {
                    let labels = [("account", account.as_str()), ("state", s.as_str())];
                    ConstGauge::new(i64::from(s == now)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        if !self.tokens.is_empty() {
            let mut family = encoder.encode_descriptor(
                "brokergraph_oauth_token_expiry_timestamp_seconds",
                "When each OAuth account's current access token expires (Unix time); absent before the first token.",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (account, tokens) in &self.tokens {
                let Some(at) = tokens.expires_at() else {
                    continue;
                };
                let secs = at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let labels = [("account", account.as_str())];
                ConstGauge::new(secs as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(redis) = &self.redis {
            let up = ConstGauge::new(i64::from(redis.health().ok));
            up.encode(encoder.encode_descriptor(
                "brokergraph_redis_up",
                "1 when the last call to the shared Redis succeeded (only with redis.url).",
                None,
                up.metric_type(),
            )?)?;
        }
        let mut family = encoder.encode_descriptor(
            "brokergraph_rate_limit_remaining",
            "Requests each gateway key may make right now (token bucket).",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (key, n) in self.ratelimit.remaining() {
            let labels = [("key_id", key.as_str())];
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
