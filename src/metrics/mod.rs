//! The gateway's own counters, rendered with the cache, breaker and rate-limit
//! state as Prometheus text at `/metrics` (`server::metrics`).
//!
//! Hand-written rather than the `prometheus` or `metrics` crates: a dozen series
//! do not need a dependency, and those crates favour a process-global registry,
//! while each `Gateway` (tests start dozens in one process) must count only its own.

mod broker;
mod connections;
mod streams;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker::Route;
pub(crate) use broker::Meter;
pub(crate) use connections::{ConnectionGuard, ConnectionKind, Connections, Refusal, TimeoutKind};
pub(crate) use streams::StreamMetrics;

/// Upper bounds (seconds) of the request latency histogram.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Operation names are chosen by clients: beyond this many distinct ones, further
/// names count as `other`, so a client cannot grow the exposition without bound.
const MAX_OPERATIONS: usize = 200;

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    connections: Arc<Connections>,
    streams: Arc<StreamMetrics>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(String, String), u64>,
    latency_counts: [u64; BUCKETS.len()],
    latency_sum: f64,
    latency_count: u64,
    mutations: BTreeMap<(&'static str, String), u64>,
    replays: u64,
    conflicts: u64,
    rate_limited: BTreeMap<String, u64>,
    broker_calls: BTreeMap<(Route, &'static str), u64>,
    broker_latency_sum: f64,
    broker_latency_count: u64,
    broker_latency_counts: [u64; BUCKETS.len()],
    /// The broker's `X-RateLimit-Remaining` and `-Limit`, as last seen.
    broker_budget: Option<(u32, u32)>,
}

impl Metrics {
    /// The connection gauges and counters. A handler that serves a long-lived
    /// stream the accept loop does not see as such can count it with
    /// `connections().opened(kind)`; upgrades to WebSocket and `text/event-stream`
    /// responses are already counted where connections are served
    /// (`server::connection`); counting them again would count them twice.
    pub(crate) fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// For the order stream (`streams::OrderFeed`).
    pub(crate) fn streams(&self) -> &Arc<StreamMetrics> {
        &self.streams
    }

    /// One GraphQL request that reached the schema (or was refused before it).
    pub(crate) fn request(&self, operation: Option<&str>, outcome: &str, took: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut op = operation
            .filter(|o| !o.is_empty() && o.len() <= 64)
            .filter(|o| o.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("anonymous")
            .to_string();
        let known = m.requests.keys().any(|(o, _)| *o == op);
        if !known && m.requests.len() >= MAX_OPERATIONS {
            op = "other".to_string();
        }
        *m.requests.entry((op, outcome.to_string())).or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                m.latency_counts[i] += 1;
            }
        }
        m.latency_sum += secs;
        m.latency_count += 1;
    }

    /// `conflict`: the idempotency key was reused for another order, or is still in
    /// use; the caller knows the codes, this module stays below the GraphQL layer.
    pub(crate) fn mutation(
        &self,
        mutation: &'static str,
        outcome: &str,
        replayed: bool,
        conflict: bool,
    ) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.mutations
            .entry((mutation, outcome.to_string()))
            .or_default() += 1;
        m.replays += u64::from(replayed);
        m.conflicts += u64::from(conflict);
    }

    pub(crate) fn rate_limited(&self, key_id: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.rate_limited.entry(key_id.to_string()).or_default() += 1;
    }

    /// One call to the broker adapter (one HTTP attempt), by route and result.
    pub(crate) fn broker_call(&self, route: Route, status: &'static str, took: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.broker_calls.entry((route, status)).or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                m.broker_latency_counts[i] += 1;
            }
        }
        m.broker_latency_sum += secs;
        m.broker_latency_count += 1;
    }

    pub(crate) fn broker_budget(&self, remaining: u32, limit: u32) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.broker_budget = Some((remaining, limit));
    }

    /// Appends this registry's series to `out`.
    pub(crate) fn render(&self, out: &mut String) {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        header(
            out,
            "brokergraph_graphql_requests_total",
            "counter",
            "GraphQL requests by operation name and outcome (ok or the first error code).",
        );
        for ((op, outcome), n) in &m.requests {
            let _ = writeln!(out, "brokergraph_graphql_requests_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}");
        }
        header(
            out,
            "brokergraph_graphql_request_duration_seconds",
            "histogram",
            "Time to answer a GraphQL request.",
        );
        for (bound, n) in BUCKETS.iter().zip(m.latency_counts) {
            let _ = writeln!(
                out,
                "brokergraph_graphql_request_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "brokergraph_graphql_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.latency_count
        );
        let _ = writeln!(
            out,
            "brokergraph_graphql_request_duration_seconds_sum {}",
            m.latency_sum
        );
        let _ = writeln!(
            out,
            "brokergraph_graphql_request_duration_seconds_count {}",
            m.latency_count
        );
        header(
            out,
            "brokergraph_mutations_total",
            "counter",
            "Mutation attempts by mutation and outcome (OK, a userErrors code, or an error code).",
        );
        for ((mutation, outcome), n) in &m.mutations {
            let _ = writeln!(
                out,
                "brokergraph_mutations_total{{mutation=\"{mutation}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        header(
            out,
            "brokergraph_idempotency_replays_total",
            "counter",
            "submitOrder answers replayed from the idempotency store.",
        );
        let _ = writeln!(out, "brokergraph_idempotency_replays_total {}", m.replays);
        header(
            out,
            "brokergraph_idempotency_conflicts_total",
            "counter",
            "Idempotency keys reused with other input or still in use.",
        );
        let _ = writeln!(
            out,
            "brokergraph_idempotency_conflicts_total {}",
            m.conflicts
        );
        render_broker(&m, out);
        self.connections.render(out);
        self.streams.render(out);
        header(
            out,
            "brokergraph_rate_limited_total",
            "counter",
            "Requests refused with 429 by the per-key rate limit, by key id.",
        );
        for (key, n) in &m.rate_limited {
            let _ = writeln!(
                out,
                "brokergraph_rate_limited_total{{key_id=\"{}\"}} {n}",
                escape(key)
            );
        }
    }
}

fn render_broker(m: &Inner, out: &mut String) {
    header(
        out,
        "brokergraph_broker_requests_total",
        "counter",
        "HTTP attempts to the broker (retries included) by route and result.",
    );
    for ((route, status), n) in &m.broker_calls {
        let _ = writeln!(
            out,
            "brokergraph_broker_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    let name = "brokergraph_broker_request_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Time of one HTTP attempt to the broker.",
    );
    for (bound, n) in BUCKETS.iter().zip(m.broker_latency_counts) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {}",
        m.broker_latency_count
    );
    let _ = writeln!(out, "{name}_sum {}", m.broker_latency_sum);
    let _ = writeln!(out, "{name}_count {}", m.broker_latency_count);
    if let Some((remaining, limit)) = m.broker_budget {
        header(
            out,
            "brokergraph_broker_rate_limit_remaining",
            "gauge",
            "The broker's X-RateLimit-Remaining as last reported.",
        );
        let _ = writeln!(out, "brokergraph_broker_rate_limit_remaining {remaining}");
        header(
            out,
            "brokergraph_broker_rate_limit_limit",
            "gauge",
            "The broker's X-RateLimit-Limit as last reported.",
        );
        let _ = writeln!(out, "brokergraph_broker_rate_limit_limit {limit}");
    }
}

pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the exposition format requires (key ids come from the config).
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
