//! The gateway's metrics, on `prometheus-client` (the Prometheus project's Rust
//! client), served at `/metrics` (`server::metrics`).
//!
//! One [`Registry`] per gateway, not a process-global one: tests start dozens of
//! gateways in one process and each must count only its own. Recording touches
//! only the metric's own atomics (a `Family` adds a read lock on its label map);
//! the registry's lock is taken to register at start-up and to encode a scrape.
//!
//! Adding metrics to a module: write one struct of handles (`Counter`, `Gauge`,
//! `Family<Labels, _>`, `Histogram`) with a `register(&mut Registry) -> Self` that
//! names and documents each of them, the way [`StreamMetrics`] does; then either
//! hold it in [`Metrics`] (a module below `metrics`, built in [`Metrics::new`]) or
//! build it with [`Metrics::add`] where the module is built (a module above). State
//! another layer already keeps (cache counters, the breaker) is read at each scrape
//! by a `Collector` given to [`Metrics::collect`]. Names are OpenMetrics family
//! names: a counter is registered without `_total`, which the encoder appends.
//! docs/operations.md lists every metric; `tests/api/operations.rs` compares that
//! table with what `/metrics` serves.

mod broker;
mod connections;
mod graphql;
mod process;
mod quotes;
mod streams;

use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::info::Info;
pub(crate) use prometheus_client::registry::Registry;

use broker::BrokerMetrics;
pub(crate) use broker::Meter;
pub(crate) use connections::{ConnectionGuard, ConnectionKind, Connections, Refusal, TimeoutKind};
use graphql::GraphqlMetrics;
pub(crate) use quotes::{QuoteFamilies, QuoteMetrics};
pub(crate) use streams::{StreamFamilies, StreamMetrics};

/// Upper bounds (seconds) of the latency histograms: the GraphQL request's and the
/// broker call's.
pub(crate) const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The exposition formats `/metrics` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/openmetrics-text; version=1.0.0`, what Prometheus asks for.
    OpenMetrics,
    /// `text/plain; version=0.0.4`, for a scraper or a person that asks for nothing.
    PrometheusText,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::PrometheusText => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Every metric of one gateway.
#[derive(Debug)]
pub struct Metrics {
    registry: RwLock<Registry>,
    graphql: GraphqlMetrics,
    broker: BrokerMetrics,
    connections: Arc<Connections>,
    streams: StreamFamilies,
    quotes: QuoteFamilies,
    rate_limited: Family<KeyLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    key_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    /// The commit, when the build was given one (`BROKERGRAPH_REVISION`, set by
    /// the container build); `unknown` for a plain `cargo build`.
    revision: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        registry.register(
            "brokergraph_build",
            "The running build: version and revision",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                revision: option_env!("BROKERGRAPH_REVISION").unwrap_or("unknown"),
            }),
        );
        process::register(&mut registry);
        let graphql = GraphqlMetrics::register(&mut registry);
        let broker = BrokerMetrics::register(&mut registry);
        let connections = Arc::new(Connections::register(&mut registry));
        let streams = StreamFamilies::register(&mut registry);
        let quotes = QuoteFamilies::register(&mut registry);
        let rate_limited = Family::default();
        registry.register(
            "brokergraph_rate_limited",
            "Requests refused with 429 by the per-key rate limit, by key id",
            rate_limited.clone(),
        );
        Metrics {
            registry: RwLock::new(registry),
            graphql,
            broker,
            connections,
            streams,
            quotes,
            rate_limited,
        }
    }

    /// Registers a module's metrics with this gateway's registry: `register` names
    /// each of them and returns the handles the module records into.
    pub(crate) fn add<T>(&self, register: impl FnOnce(&mut Registry) -> T) -> T {
        register(&mut self.registry.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reports what `collector` reads, at each scrape.
    pub(crate) fn collect(&self, collector: impl Collector) {
        self.add(|r| r.register_collector(Box::new(collector)));
    }

    /// Every series, in `format`.
    pub(crate) fn encode(&self, format: Format) -> String {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(16 * 1024);
        let encoded = match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            }
        };
        // Writing to a String fails only if a collector does, and ours do not.
        if let Err(e) = encoded {
            tracing::error!(error = %e, "encoding /metrics failed");
        }
        out
    }

    /// The connection gauges and counters. A handler that serves a long-lived
    /// stream the accept loop does not see as such can count it with
    /// `connections().opened(kind)`; upgrades to WebSocket and `text/event-stream`
    /// responses are already counted where connections are served
    /// (`server::connection`); counting them again would count them twice.
    pub(crate) fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// For an account's order stream (`streams::OrderFeed`).
    pub(crate) fn streams(&self, account: &str) -> Arc<StreamMetrics> {
        self.streams.account(account)
    }

    /// For an account's quote stream (`streams::QuoteHub`).
    pub(crate) fn quotes(&self, account: &str) -> Arc<QuoteMetrics> {
        self.quotes.account(account)
    }

    /// One GraphQL answer: executed, from the response cache, or refused before
    /// the schema ran (`graphql::Observed` says which operation and outcome).
    pub(crate) fn request(
        &self,
        operation: Option<&str>,
        outcome: &str,
        took: std::time::Duration,
    ) {
        self.graphql.request(operation, outcome, took);
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
        self.graphql.mutation(mutation, outcome, replayed, conflict);
    }

    pub(crate) fn rate_limited(&self, key_id: &str) {
        self.rate_limited
            .get_or_create(&KeyLabel {
                key_id: key_id.to_string(),
            })
            .inc();
    }

    /// The broker series of one account, for its `Meter`.
    pub(crate) fn broker_account(&self, account: &str) -> broker::AccountBrokerMetrics {
        self.broker.account(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_name_the_same_series_and_only_openmetrics_ends_with_eof() {
        let metrics = Metrics::new();
        metrics.rate_limited("bot\"\n");
        let open = metrics.encode(Format::OpenMetrics);
        let text = metrics.encode(Format::PrometheusText);
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(!text.contains("# EOF"), "{text}");
        for out in [&open, &text] {
            // Key ids come from the config: escaped as the format requires.
            let line = "brokergraph_rate_limited_total{key_id=\"bot\\\"\\n\"} 1";
            assert!(out.lines().any(|l| l == line), "{line} in {out}");
            assert!(out.contains("brokergraph_build_info{version=\""), "{out}");
        }
    }

    #[test]
    fn a_module_registers_its_own_metrics_once_and_they_are_served() {
        let metrics = Metrics::new();
        let counter: Counter = metrics.add(|r| {
            let counter = Counter::default();
            r.register("brokergraph_test_things", "Things.", counter.clone());
            counter
        });
        counter.inc();
        let out = metrics.encode(Format::PrometheusText);
        assert!(out.contains("\nbrokergraph_test_things_total 1\n"), "{out}");
    }
}
