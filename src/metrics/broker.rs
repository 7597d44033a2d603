//! Counts and times every call to the broker adapter, for `/metrics`: each HTTP
//! attempt (retries included, since it sits under the resilience layer) by route
//! and result, and the broker's own rate-limit budget as its last answer said.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::Metrics;
use crate::broker::{Broker, BrokerError, CallLayer, Route};

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
