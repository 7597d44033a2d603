//! A `Broker` that counts and times every call to the adapter beneath it, for
//! `/metrics`: each HTTP attempt (retries included, since it sits under the
//! resilience layer) by route and result, and the broker's own rate-limit budget.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::broker::{Broker, BrokerError, RateLimitSnapshot};
use crate::domain::{
    Account, Instrument, NewOrder, Order, OrderQuery, Page, PageRequest, Position, Submitted,
};
use crate::metrics::Metrics;

pub(crate) struct MeteredBroker {
    inner: Arc<dyn Broker>,
    metrics: Arc<Metrics>,
}

impl MeteredBroker {
    pub(crate) fn new(inner: Arc<dyn Broker>, metrics: Arc<Metrics>) -> Self {
        MeteredBroker { inner, metrics }
    }

    async fn call<T>(
        &self,
        route: &'static str,
        call: impl Future<Output = Result<T, BrokerError>>,
    ) -> Result<T, BrokerError> {
        let started = Instant::now();
        let result = call.await;
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => status_of(e),
        };
        self.metrics.broker_call(route, status, started.elapsed());
        if let Some(snap) = self.inner.rate_limit() {
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
    }
}

#[async_trait]
impl Broker for MeteredBroker {
    async fn account(&self) -> Result<Account, BrokerError> {
        self.call("account", self.inner.account()).await
    }
    async fn instrument(&self, symbol: &str) -> Result<Instrument, BrokerError> {
        self.call("instrument", self.inner.instrument(symbol)).await
    }
    async fn instruments(&self, page: &PageRequest) -> Result<Page<Instrument>, BrokerError> {
        self.call("instruments", self.inner.instruments(page)).await
    }
    async fn positions(&self, page: &PageRequest) -> Result<Page<Position>, BrokerError> {
        self.call("positions", self.inner.positions(page)).await
    }
    async fn order(&self, id: &str) -> Result<Order, BrokerError> {
        self.call("order", self.inner.order(id)).await
    }
    async fn orders(
        &self,
        query: &OrderQuery,
        page: &PageRequest,
    ) -> Result<Page<Order>, BrokerError> {
        self.call("orders", self.inner.orders(query, page)).await
    }
    async fn submit_order(&self, order: &NewOrder) -> Result<Submitted, BrokerError> {
        self.call("submit_order", self.inner.submit_order(order))
            .await
    }
    async fn cancel_order(&self, id: &str) -> Result<Order, BrokerError> {
        self.call("cancel_order", self.inner.cancel_order(id)).await
    }
    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        self.inner.rate_limit()
    }
}
