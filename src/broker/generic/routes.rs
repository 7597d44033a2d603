//! The `Broker` trait over the generic v1 routes: one method per route of the v1 API
//! (broker-sim/README.md). Each call gets a span named after its route template, so logs
//! and traces group by route, never by a URL full of ids.

use async_trait::async_trait;
use tracing::field::Empty;

use super::errors::On404;
use super::wire::{
    status_filter, AccountDto, InstrumentDto, ListDto, NewOrderDto, OrderDto, PositionDto,
    QuotesDto, ReplaceOrderDto,
};
use super::GenericBroker;
use crate::broker::{Broker, BrokerError, RateLimitSnapshot, Route, MAX_BROKER_PAGE};
use crate::domain::{
    Account, CanceledOrders, Instrument, NewOrder, Order, OrderQuery, OrderReplacement,
    OrderStatus, OrderStatusFilter, Page, PageRequest, Position, PositionClose, Quote, Replaced,
    Submitted,
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

    /// The answer is the new order; the replaced one is read back so the caller sees
    /// both (best effort: a failed read leaves it out rather than fail a replace that
    /// happened).
    #[tracing::instrument(skip_all, fields(route = %Route::ReplaceOrder, http.route = "PATCH /v1/orders/{id}", order_id = id, idempotency_key = %replacement.idempotency_key, status = Empty, latency_ms = Empty))]
    async fn replace_order(
        &self,
        id: &str,
        replacement: &OrderReplacement,
    ) -> Result<Replaced, BrokerError> {
        let request = self
            .client
            .patch(self.object_url("orders", id)?)
            .header("Idempotency-Key", replacement.idempotency_key.to_string())
            .json(&ReplaceOrderDto::from(replacement));
        let reply = self.call::<OrderDto>(request, On404::NotFound).await?;
        let order = reply.body.into_domain(reply.received_at);
        let replaced = self.order(id).await.ok();
        Ok(Replaced {
            order,
            replaced,
            replayed: reply.replayed,
        })
    }

    /// The v1 API has no close: a market order of the opposite side for the position
    /// (or the part asked for), under the close's key. An order already under the key
    /// is the answer: the position it closed no longer says what the close was.
    #[tracing::instrument(skip_all, fields(route = %Route::ClosePosition, symbol = %close.symbol, idempotency_key = %close.idempotency_key))]
    async fn close_position(&self, close: &PositionClose) -> Result<Submitted, BrokerError> {
        if let Some(order) = self
            .order_under_key(&close.symbol, close.idempotency_key)
            .await?
        {
            return Ok(Submitted {
                order,
                replayed: true,
            });
        }
        let held = self.position(&close.symbol).await?;
        let order = crate::broker::closing_order(close, held)?;
        self.submit_order(&order).await
    }

    /// The v1 API has no cancel-all: the open orders are listed, then each is canceled
    /// as `cancel_order` would. One the broker refuses (filled meanwhile), or whose
    /// cancel fails, is read back and reported as it stands.
    #[tracing::instrument(skip_all, fields(route = %Route::CancelAllOrders, symbol))]
    async fn cancel_all_orders(&self, symbol: Option<&str>) -> Result<CanceledOrders, BrokerError> {
        let query = OrderQuery {
            status: OrderStatusFilter::Open,
            symbol: symbol.map(str::to_owned),
        };
        let mut open = Vec::new();
        let mut cursor = None;
        loop {
            let page = PageRequest {
                cursor,
                limit: MAX_BROKER_PAGE,
            };
            let listed = self.orders(&query, &page).await?;
            open.extend(listed.items);
            match listed.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut result = CanceledOrders::default();
        for order in open {
            let now = match self.cancel_order(&order.id).await {
                Ok(canceled) => canceled,
                Err(BrokerError::NotFound) => continue,
                Err(_) => self.order(&order.id).await.unwrap_or(order),
            };
            if matches!(
                now.status,
                OrderStatus::Canceled | OrderStatus::PendingCancel
            ) {
                result.canceled.push(now);
            } else {
                result.not_canceled.push(now);
            }
        }
        Ok(result)
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Quotes, http.route = "GET /v1/quotes", symbols = symbols.len(), status = Empty, latency_ms = Empty))]
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>, BrokerError> {
        let mut url = self.url(&["quotes"]);
        url.query_pairs_mut()
            .append_pair("symbols", &symbols.join(","));
        let reply = self
            .call::<QuotesDto>(self.client.get(url), On404::Rejected)
            .await?;
        let as_of = reply.received_at;
        Ok(reply
            .body
            .data
            .into_iter()
            .map(|q| q.into_domain(as_of))
            .collect())
    }

    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        *self.rate_limit.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl GenericBroker {
    /// The signed position in `symbol`, walking the positions list; a symbol without
    /// one is the broker's refusal `position_not_found`.
    async fn position(&self, symbol: &str) -> Result<rust_decimal::Decimal, BrokerError> {
        let mut cursor = None;
        loop {
            let page = PageRequest {
                cursor,
                limit: MAX_BROKER_PAGE,
            };
            let listed = self.positions(&page).await?;
            if let Some(held) = listed.items.iter().find(|p| p.symbol == symbol) {
                return Ok(held.quantity);
            }
            match listed.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Err(crate::broker::no_position(symbol)),
            }
        }
    }

    /// The order placed under `key` among the newest orders of `symbol`, if any: where
    /// a close sent before (a lost answer, a client's retry) already is.
    async fn order_under_key(
        &self,
        symbol: &str,
        key: uuid::Uuid,
    ) -> Result<Option<Order>, BrokerError> {
        let query = OrderQuery {
            status: OrderStatusFilter::All,
            symbol: Some(symbol.to_owned()),
        };
        let page = PageRequest {
            cursor: None,
            limit: MAX_BROKER_PAGE,
        };
        let listed = self.orders(&query, &page).await?;
        Ok(listed
            .items
            .into_iter()
            .find(|o| o.idempotency_key == Some(key)))
    }
}
