//! Counts and times every call to the broker adapter, for `/metrics`: each HTTP
//! attempt (retries included, since it sits under the resilience layer) by route,
//! result and account, and each account's rate-limit budget as the broker's last
//! answer said.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
    account: String,
}

type Latency = Family<RouteLabel, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub(super) struct BrokerMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Latency,
    budgets: Arc<Budgets>,
}

/// One account's series, made when its stack is built: a call records without
/// building labels, except its counter's (the status is known only then).
pub(crate) struct AccountBrokerMetrics {
    account: String,
    calls: Family<CallLabels, Counter>,
    /// One histogram per route (the routes are fixed).
    latency: [Histogram; Route::ALL.len()],
    budget: Arc<BrokerBudget>,
}

impl AccountBrokerMetrics {
    fn call(&self, route: Route, status: &'static str, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                route: route.as_str(),
                status,
                account: self.account.clone(),
            })
            .inc();
        self.latency[route.index()].observe(took.as_secs_f64());
    }
}

/// Every account's budget, by account id.
#[derive(Debug, Default)]
struct Budgets(Mutex<Vec<(String, Arc<BrokerBudget>)>>);

impl BrokerMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let calls = Family::default();
        let latency: Latency = Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        let budgets = Arc::new(Budgets::default());
        registry.register(
            "brokergraph_broker_requests",
            "HTTP attempts to the broker (retries included) by route and result",
            calls.clone(),
        );
        registry.register(
            "brokergraph_broker_request_duration_seconds",
            "Time of one HTTP attempt to the broker, by route",
            latency.clone(),
        );
        registry.register_collector(Box::new(budgets.clone()));
        BrokerMetrics {
            calls,
            latency,
            budgets,
        }
    }

    pub(super) fn account(&self, account: &str) -> AccountBrokerMetrics {
        let budget = Arc::new(BrokerBudget::default());
        let mut budgets = self.budgets.0.lock().unwrap_or_else(|e| e.into_inner());
        budgets.push((account.to_string(), budget.clone()));
        AccountBrokerMetrics {
            account: account.to_string(),
            calls: self.calls.clone(),
            latency: Route::ALL.map(|r| {
                self.latency.get_or_create_owned(&RouteLabel {
                    route: r.as_str(),
                    account: account.to_string(),
                })
            }),
            budget,
        }
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

impl Collector for Budgets {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let seen: Vec<(String, u32, u32)> = {
            let budgets = self.0.lock().unwrap_or_else(|e| e.into_inner());
            budgets
                .iter()
                .filter_map(|(account, b)| b.get().map(|(r, l)| (account.clone(), r, l)))
                .collect()
        };
        if seen.is_empty() {
            return Ok(());
        }
        for (name, help, pick) in [
            (
                "brokergraph_broker_rate_limit_remaining",
                "The broker's X-RateLimit-Remaining as last reported, per account.",
                (|(_, r, _): &(String, u32, u32)| *r) as fn(&(String, u32, u32)) -> u32,
            ),
            (
                "brokergraph_broker_rate_limit_limit",
                "The broker's X-RateLimit-Limit as last reported, per account.",
                |(_, _, l): &(String, u32, u32)| *l,
            ),
        ] {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for entry in &seen {
                let labels = [("account", entry.0.as_str())];
                ConstGauge::new(i64::from(pick(entry))).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The `CallLayer` that records into [`Metrics`]; wraps the adapter directly.
pub(crate) struct Meter {
    metrics: AccountBrokerMetrics,
}

impl Meter {
    /// The meter of one account's adapter: its series carry `account`.
    pub(crate) fn new(metrics: &Metrics, account: &str) -> Self {
        Meter {
            metrics: metrics.broker_account(account),
        }
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
        self.metrics.call(route, status, started.elapsed());
        if let Some(snap) = inner.rate_limit() {
            self.metrics.budget.set(snap.remaining, snap.limit);
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
