use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Broker, BrokerError, RateLimitSnapshot, Route};
use crate::domain::{
    Account, CanceledOrders, Instrument, NewOrder, Order, OrderQuery, OrderReplacement, Page,
    PageRequest, Position, PositionClose, Quote, Replaced, Submitted,
};

/// What a wrapper of broker calls does around each call, the same for every route:
/// count it, retry it, refuse it while the circuit is open. Written once here
/// instead of eleven hand-written delegations per wrapper, so a new `Broker` method
/// is one line in [`Layered`] and every wrapper gets it.
///
/// `op` may be called several times (a retry sends the request again); every call
/// makes the same request.
pub trait CallLayer: Send + Sync + 'static {
    fn call<T, F, Fut>(
        &self,
        route: Route,
        inner: &dyn Broker,
        op: F,
    ) -> impl Future<Output = Result<T, BrokerError>> + Send
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, BrokerError>> + Send;
}

/// A `Broker` that runs every call to `inner` through `layer`.
pub struct Layered<L> {
    inner: Arc<dyn Broker>,
    layer: L,
}

impl<L: CallLayer> Layered<L> {
    pub fn new(inner: Arc<dyn Broker>, layer: L) -> Self {
        Layered { inner, layer }
    }

    pub fn layer(&self) -> &L {
        &self.layer
    }

    async fn call<T, F, Fut>(&self, route: Route, op: F) -> Result<T, BrokerError>
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, BrokerError>> + Send,
    {
        self.layer.call(route, &*self.inner, op).await
    }
}

#[async_trait]
impl<L: CallLayer> Broker for Layered<L> {
    async fn account(&self) -> Result<Account, BrokerError> {
        self.call(Route::Account, || self.inner.account()).await
    }
    async fn instrument(&self, symbol: &str) -> Result<Instrument, BrokerError> {
        self.call(Route::Instrument, || self.inner.instrument(symbol))
            .await
    }
    async fn instruments(&self, page: &PageRequest) -> Result<Page<Instrument>, BrokerError> {
        self.call(Route::Instruments, || self.inner.instruments(page))
            .await
    }
    async fn positions(&self, page: &PageRequest) -> Result<Page<Position>, BrokerError> {
        self.call(Route::Positions, || self.inner.positions(page))
            .await
    }
    async fn order(&self, id: &str) -> Result<Order, BrokerError> {
        self.call(Route::Order, || self.inner.order(id)).await
    }
    async fn orders(
        &self,
        query: &OrderQuery,
        page: &PageRequest,
    ) -> Result<Page<Order>, BrokerError> {
        self.call(Route::Orders, || self.inner.orders(query, page))
            .await
    }
    async fn submit_order(&self, order: &NewOrder) -> Result<Submitted, BrokerError> {
        self.call(Route::SubmitOrder, || self.inner.submit_order(order))
            .await
    }
    async fn cancel_order(&self, id: &str) -> Result<Order, BrokerError> {
        self.call(Route::CancelOrder, || self.inner.cancel_order(id))
            .await
    }
    async fn replace_order(
        &self,
        id: &str,
        replacement: &OrderReplacement,
    ) -> Result<Replaced, BrokerError> {
        self.call(Route::ReplaceOrder, || {
            self.inner.replace_order(id, replacement)
        })
        .await
    }
    async fn close_position(&self, close: &PositionClose) -> Result<Submitted, BrokerError> {
        self.call(Route::ClosePosition, || self.inner.close_position(close))
            .await
    }
    async fn cancel_all_orders(&self, symbol: Option<&str>) -> Result<CanceledOrders, BrokerError> {
        self.call(Route::CancelAllOrders, || {
            self.inner.cancel_all_orders(symbol)
        })
        .await
    }
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>, BrokerError> {
        self.call(Route::Quotes, || self.inner.quotes(symbols))
            .await
    }
    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        self.inner.rate_limit()
    }
}
