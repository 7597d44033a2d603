//! The `Broker` trait over the generic v1 routes: one method per route of the v1 API
//! (broker-sim/README.md). Each call gets a span named after its route template, so logs
//! and traces group by route, never by a URL full of ids.

use async_trait::async_trait;
use tracing::field::Empty;

use super::errors::On404;
use super::wire::{
    status_filter, AccountDto, InstrumentDto, ListDto, NewOrderDto, OrderDto, PositionDto,
};
use super::GenericBroker;
use crate::broker::{Broker, BrokerError, RateLimitSnapshot, Route};
use crate::domain::{
    Account, Instrument, NewOrder, Order, OrderQuery, Page, PageRequest, Position, Submitted,
};

#[async_trait]
impl Broker for GenericBroker {
    #[tracing::instrument(skip_all, fields(route = %Route::Account, http.route = "GET /v1/account", status = Empty, latency_ms = Empty))]
    async fn account(&self) -> Result<Account, BrokerError> {
        let request = self.client.get(self.url(&["account"]));
        let reply = self.call::<AccountDto>(request, On404::Rejected).await?;
        Ok(reply.body.into_domain(reply.received_at))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Instrument, http.route = "GET /v1/instruments/{symbol}", symbol = symbol, status = Empty, latency_ms = Empty))]
    async fn instrument(&self, symbol: &str) -> Result<Instrument, BrokerError> {
        let request = self.client.get(self.object_url("instruments", symbol)?);
        let reply = self.call::<InstrumentDto>(request, On404::NotFound).await?;
        Ok(reply.body.into())
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Instruments, http.route = "GET /v1/instruments", limit = page.limit, status = Empty, latency_ms = Empty))]
    async fn instruments(&self, page: &PageRequest) -> Result<Page<Instrument>, BrokerError> {
        let request = self.client.get(self.list_url("instruments", page));
        let reply = self
            .call::<ListDto<InstrumentDto>>(request, On404::Rejected)
            .await?;
        Ok(reply.body.into_page(Instrument::from))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Positions, http.route = "GET /v1/positions", limit = page.limit, status = Empty, latency_ms = Empty))]
    async fn positions(&self, page: &PageRequest) -> Result<Page<Position>, BrokerError> {
        let request = self.client.get(self.list_url("positions", page));
        let reply = self
            .call::<ListDto<PositionDto>>(request, On404::Rejected)
            .await?;
        let as_of = reply.received_at;
        Ok(reply.body.into_page(|p| p.into_domain(as_of)))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Order, http.route = "GET /v1/orders/{id}", order_id = id, status = Empty, latency_ms = Empty))]
    async fn order(&self, id: &str) -> Result<Order, BrokerError> {
        let request = self.client.get(self.object_url("orders", id)?);
        let reply = self.call::<OrderDto>(request, On404::NotFound).await?;
        Ok(reply.body.into_domain(reply.received_at))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Orders, http.route = "GET /v1/orders", limit = page.limit, status = Empty, latency_ms = Empty))]
    async fn orders(
        &self,
        query: &OrderQuery,
        page: &PageRequest,
    ) -> Result<Page<Order>, BrokerError> {
        let mut url = self.list_url("orders", page);
        url.query_pairs_mut()
            .append_pair("status", status_filter(query.status));
        if let Some(symbol) = &query.symbol {
            url.query_pairs_mut().append_pair("symbol", symbol);
        }
        let reply = self
            .call::<ListDto<OrderDto>>(self.client.get(url), On404::Rejected)
            .await?;
        let as_of = reply.received_at;
        Ok(reply.body.into_page(|o| o.into_domain(as_of)))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::SubmitOrder, http.route = "POST /v1/orders", idempotency_key = %order.idempotency_key, status = Empty, latency_ms = Empty))]
    async fn submit_order(&self, order: &NewOrder) -> Result<Submitted, BrokerError> {
        let request = self
            .client
            .post(self.url(&["orders"]))
            .header("Idempotency-Key", order.idempotency_key.to_string())
            .json(&NewOrderDto::from(order));
        let reply = self.call::<OrderDto>(request, On404::Rejected).await?;
        Ok(Submitted {
            order: reply.body.into_domain(reply.received_at),
            replayed: reply.replayed,
        })
    }

    #[tracing::instrument(skip_all, fields(route = %Route::CancelOrder, http.route = "DELETE /v1/orders/{id}", order_id = id, status = Empty, latency_ms = Empty))]
    async fn cancel_order(&self, id: &str) -> Result<Order, BrokerError> {
        let request = self.client.delete(self.object_url("orders", id)?);
        let reply = self.call::<OrderDto>(request, On404::NotFound).await?;
        Ok(reply.body.into_domain(reply.received_at))
    }

    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        *self.rate_limit.lock().unwrap_or_else(|p| p.into_inner())
    }
}
