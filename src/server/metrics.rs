//! `GET /metrics`: Prometheus text (exposition format 0.0.4) of the gateway's own
//! counters (`crate::metrics`) plus the state other layers keep: cache and broker
//! call counters, the circuit breaker, and the per-key rate-limit buckets.
//!
//! Unauthenticated, like `/healthz`: scrapers rarely carry API keys, and nothing
//! here is secret (key ids, never keys). Firewall it if route names leak too much.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics::{escape, header as help};
use crate::resilience::BreakerState;

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(4096);
    state.services.metrics.render(&mut out);

    let c = state.services.cache.snapshot();
    help(
        &mut out,
        "brokergraph_broker_calls_total",
        "counter",
        "Calls to the broker by route (after the cache), reads and writes.",
    );
    for (route, n) in &c.broker_calls {
        let _ = writeln!(
            out,
            "brokergraph_broker_calls_total{{route=\"{}\"}} {n}",
            escape(route)
        );
    }
    for (name, kind, value, text) in [
        (
            "brokergraph_broker_rate_limited_total",
            "counter",
            c.broker_429s,
            "429s the broker sent despite the throttle.",
        ),
        (
            "brokergraph_cache_hits_total",
            "counter",
            c.hits,
            "Reads answered from a fresh cached value.",
        ),
        (
            "brokergraph_cache_misses_total",
            "counter",
            c.misses,
            "Reads that started a broker call.",
        ),
        (
            "brokergraph_cache_coalesced_total",
            "counter",
            c.coalesced,
            "Reads that joined another read's broker call.",
        ),
        (
            "brokergraph_cache_stale_total",
            "counter",
            c.stale_served,
            "Reads answered with a stale value because the broker could not be asked.",
        ),
        (
            "brokergraph_cache_invalidations_total",
            "counter",
            c.invalidations,
            "Submits and cancels that invalidated an account's cached state.",
        ),
        (
            "brokergraph_throttle_waits_total",
            "counter",
            c.throttle_waits,
            "Broker calls that waited for rate-limit budget.",
        ),
        (
            "brokergraph_throttle_refusals_total",
            "counter",
            c.throttle_refusals,
            "Broker calls refused for lack of budget (served stale or RATE_LIMITED).",
        ),
    ] {
        help(&mut out, name, kind, text);
        let _ = writeln!(out, "{name} {value}");
    }

    help(
        &mut out,
        "brokergraph_breaker_state",
        "gauge",
        "Broker circuit breaker: 1 for the current state.",
    );
    // The first account's (`default` when configured); per-account labels come
    // with the per-account metrics.
    let now = state.services.accounts[0].breaker.state();
    for s in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        let _ = writeln!(
            out,
            "brokergraph_breaker_state{{state=\"{}\"}} {}",
            s.as_str(),
            u8::from(s == now)
        );
    }

    if let Some(redis) = &state.services.redis {
        help(
            &mut out,
            "brokergraph_redis_up",
            "gauge",
            "1 when the last call to the shared Redis succeeded (replicas only).",
        );
        let _ = writeln!(out, "brokergraph_redis_up {}", u8::from(redis.health().ok));
    }

    help(
        &mut out,
        "brokergraph_rate_limit_remaining",
        "gauge",
        "Requests each gateway key may make right now (token bucket).",
    );
    for (key, n) in state.ratelimit.remaining() {
        let _ = writeln!(
            out,
            "brokergraph_rate_limit_remaining{{key_id=\"{}\"}} {n}",
            escape(&key)
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
