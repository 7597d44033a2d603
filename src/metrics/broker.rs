//! Counts and times every call to the broker adapter, for `/metrics`: each HTTP
//! attempt (retries included, since it sits under the resilience layer) by route
//! and result, and the broker's own rate-limit budget as its last answer said.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{Metrics, LATENCY_BUCKETS};
use crate::broker::{Broker, BrokerError, CallLayer, Route};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    route: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

type Latency = Family<RouteLabel, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub(super) struct BrokerMetrics {
    calls: Family<CallLabels, Counter>,
    /// One histogram per route, made at start-up (the routes are fixed), so a call
    /// records without touching the family's map.
    latency: [Histogram; Route::ALL.len()],
    pub(super) budget: Arc<BrokerBudget>,
}

impl BrokerMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let calls = Family::default();
        let family: Latency = Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        let latency =
            Route::ALL.map(|r| family.get_or_create_owned(&RouteLabel { route: r.as_str() }));
        let budget = Arc::new(BrokerBudget::default());
        registry.register(
            "brokergraph_broker_requests",
            "HTTP attempts to the broker (retries included) by route and result",
            calls.clone(),
        );
        registry.register(
            "brokergraph_broker_request_duration_seconds",
            "Time of one HTTP attempt to the broker, by route",
            family,
        );
        registry.register_collector(Box::new(budget.clone()));
        BrokerMetrics {
            calls,
            latency,
            budget,
        }
    }

    pub(super) fn call(&self, route: Route, status: &'static str, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                route: route.as_str(),
                status,
            })
            .inc();
        self.latency[route.index()].observe(took.as_secs_f64());
    }
}

/// The broker's `X-RateLimit-Remaining` and `-Limit` as last seen, in one atomic so
/// the pair is never torn; absent from `/metrics` until a broker answer carried
/// them, since a 0 before that would read as an exhausted budget.
#[derive(Debug)]
pub(super) struct BrokerBudget(AtomicU64);

const UNSEEN: u64 = u64::MAX;

impl Default for BrokerBudget {
    fn default() -> Self {
        BrokerBudget(AtomicU64::new(UNSEEN))
    }
}

impl BrokerBudget {
    pub(super) fn set(&self, remaining: u32, limit: u32) {
        let packed = (u64::from(remaining) << 32) | u64::from(limit);
        self.0.store(packed, Ordering::Relaxed);
    }

    fn get(&self) -> Option<(u32, u32)> {
        let packed = self.0.load(Ordering::Relaxed);
        (packed != UNSEEN).then_some(((packed >> 32) as u32, packed as u32))
    }
}

impl Collector for BrokerBudget {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((remaining, limit)) = self.get() else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "brokergraph_broker_rate_limit_remaining",
                "The broker's X-RateLimit-Remaining as last reported.",
                remaining,
            ),
            (
                "brokergraph_broker_rate_limit_limit",
                "The broker's X-RateLimit-Limit as last reported.",
                limit,
            ),
        ] {
            let gauge = ConstGauge::new(i64::from(value));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// The `CallLayer` that records into [`Metrics`]; wraps the adapter directly.
pub(crate) struct Meter {
    metrics: Arc<Metrics>,
}

impl Meter {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Meter { metrics }
    }
}

impl CallLayer for Meter {
    async fn call<T, F, Fut>(
        &self,
        route: Route,
        inner: &dyn Broker,
        op: F,
    ) -> Result<T, BrokerError>
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, BrokerError>> + Send,
    {
        let started = Instant::now();
        let result = op().await;
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => status_of(e),
        };
        self.metrics.broker_call(route, status, started.elapsed());
        if let Some(snap) = inner.rate_limit() {
            self.metrics.broker_budget(snap.remaining, snap.limit);
        }
        result
    }
}

/// A small fixed set, so the label cannot grow with broker messages.
fn status_of(err: &BrokerError) -> &'static str {
    match err {
        BrokerError::Unauthorized => "unauthorized",
        BrokerError::NotFound => "not_found",
        BrokerError::Rejected { .. } => "rejected",
        BrokerError::RateLimited { .. } => "rate_limited",
        BrokerError::Unavailable { .. } => "unavailable",
        BrokerError::Timeout => "timeout",
        BrokerError::CircuitOpen => "circuit_open",
        BrokerError::Decode(_) => "decode",
        BrokerError::ReauthRequired => "reauth_required",
        BrokerError::TokenUnavailable(_) => "token_unavailable",
    }
}
