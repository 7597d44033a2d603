//! Replace, close and cancel-all over Alpaca, each safe to resend.
//!
//! - A replace (`PATCH /v2/orders/{id}`) gives the new order a client order id derived
//!   from the key, like a submit: a resend is refused as a duplicate (or, once the old
//!   order is replaced, as not replaceable), and either refusal, or an unknown
//!   outcome, is followed by a lookup under that id, which finds the replacement if
//!   there is one.
//! - A close is a market order of the opposite side under the key's client order id,
//!   not `DELETE /v2/positions/{symbol}`: that route takes no client order id, so a
//!   lost answer could not be told apart from a close that never happened, and a
//!   resend could close twice.
//! - Cancel-all is `DELETE /v2/orders` (207, a status per order), or for one symbol,
//!   which Alpaca cannot filter on, a cancel per open order of it; then the orders
//!   are read back to show how they stand.

use std::collections::HashMap;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::client_id;
use super::response::{self, Expect};
use super::wire::{CancelStatusDto, HeldDto, OrderDto, ReplaceOrderDto};
use super::AlpacaBroker;
use crate::broker::{closing_order, no_position, Broker, BrokerError, Route};
use crate::domain::{
    CanceledOrders, Order, OrderQuery, OrderReplacement, OrderStatus, OrderStatusFilter,
    PositionClose, Replaced, Submitted,
};

impl AlpacaBroker {
    #[tracing::instrument(skip_all, fields(route = %Route::ReplaceOrder, http.route = "PATCH /v2/orders/{id}", order_id = id, idempotency_key = %replacement.idempotency_key, status = tracing::field::Empty, latency_ms = tracing::field::Empty))]
    pub(super) async fn replace(
        &self,
        id: &str,
        replacement: &OrderReplacement,
    ) -> Result<Replaced, BrokerError> {
        if Uuid::try_parse(id).is_err() {
            return Err(BrokerError::NotFound);
        }
        let client_order_id = client_id::from_key(replacement.idempotency_key);
        let request = self
            .client
            .patch(self.object_url("orders", id)?)
            .json(&ReplaceOrderDto::new(replacement, &client_order_id));
        let (order, replayed) = match self.call::<OrderDto>(request, Expect::Replace).await {
            Ok(reply) => (reply.body.into_domain(reply.received_at), false),
            Err(err) if refused_or_unknown(&err) => {
                // A duplicate id, or an order already replaced (by an earlier send of
                // ours?), or a lost answer: the replacement is found under the id if
                // there is one.
                match self.order_dto_by_client_id(&client_order_id).await {
                    Ok(found) => {
                        let replaces = found.body.replaces.clone();
                        let order = found.body.into_domain(found.received_at);
                        same_replacement(&order, replaces.as_deref(), id, replacement)?;
                        (order, !err.outcome_unknown())
                    }
                    Err(BrokerError::NotFound) if response::is_duplicate_client_id(&err) => {
                        return Err(BrokerError::Unavailable {
                            status: None,
                            reason: "Alpaca refused the client order id as a duplicate and has no order under it yet".into(),
                        })
                    }
                    Err(BrokerError::RateLimited { retry_after }) if err.outcome_unknown() => {
                        return Err(BrokerError::RateLimited { retry_after })
                    }
                    Err(_) => return Err(err),
                }
            }
            Err(err) => return Err(err),
        };
        Ok(Replaced {
            order,
            replaced: self.order(id).await.ok(),
            replayed,
        })
    }

    #[tracing::instrument(skip_all, fields(route = %Route::ClosePosition, symbol = %close.symbol, idempotency_key = %close.idempotency_key))]
    pub(super) async fn close(&self, close: &PositionClose) -> Result<Submitted, BrokerError> {
        let client_order_id = client_id::from_key(close.idempotency_key);
        match self.order_dto_by_client_id(&client_order_id).await {
            // A close sent before (a lost answer, a client's retry): the position it
            // closed no longer says what it was.
            Ok(found) => {
                return Ok(Submitted {
                    order: found.body.into_domain(found.received_at),
                    replayed: true,
                })
            }
            Err(BrokerError::NotFound) => {}
            Err(err) => return Err(err),
        }
        let held = self.held(&close.symbol).await?;
        self.submit(&closing_order(close, held)?).await
    }

    #[tracing::instrument(skip_all, fields(http.route = "GET /v2/positions/{symbol}", status = tracing::field::Empty, latency_ms = tracing::field::Empty))]
    async fn held(&self, symbol: &str) -> Result<Decimal, BrokerError> {
        let request = self.client.get(self.object_url("positions", symbol)?);
        match self.call::<HeldDto>(request, Expect::Lookup).await {
            Ok(reply) => Ok(reply.body.signed()),
            Err(BrokerError::NotFound) => Err(no_position(symbol)),
            Err(err) => Err(err),
        }
    }

    #[tracing::instrument(skip_all, fields(route = %Route::CancelAllOrders, symbol))]
    pub(super) async fn cancel_all(
        &self,
        symbol: Option<&str>,
    ) -> Result<CanceledOrders, BrokerError> {
        let attempted: Vec<(String, bool)> = match symbol {
            None => self
                .delete_all()
                .await?
                .into_iter()
                .map(|s| (s.id, (200..300).contains(&s.status)))
                .collect(),
            Some(symbol) => {
                let query = OrderQuery {
                    status: OrderStatusFilter::Open,
                    symbol: Some(symbol.to_owned()),
                };
                let open = self
                    .list_orders(&query, super::paging::MAX_ORDERS_LIMIT, None)
                    .await?;
                let mut attempted = Vec::new();
                for order in open.body {
                    match self.request_cancel(&order.id).await {
                        Ok(()) => attempted.push((order.id, true)),
                        Err(BrokerError::NotFound) => {}
                        Err(_) => attempted.push((order.id, false)),
                    }
                }
                attempted
            }
        };
        let mut now = self.recent_orders().await.unwrap_or_default();
        let mut result = CanceledOrders::default();
        for (id, accepted) in attempted {
            let order = match now.remove(&id) {
                Some(order) => order,
                None => match self.order(&id).await {
                    Ok(order) => order,
                    Err(_) => continue,
                },
            };
            // Alpaca accepts a cancel before it completes: accepted and still open
            // is on its way; refused, or ended otherwise (filled), it was not canceled.
            let canceled = matches!(
                order.status,
                OrderStatus::Canceled | OrderStatus::PendingCancel
            ) || (accepted && !order.status.is_terminal());
            if canceled {
                result.canceled.push(order);
            } else {
                result.not_canceled.push(order);
            }
        }
        Ok(result)
    }

    #[tracing::instrument(skip_all, fields(http.route = "DELETE /v2/orders", status = tracing::field::Empty, latency_ms = tracing::field::Empty))]
    async fn delete_all(&self) -> Result<Vec<CancelStatusDto>, BrokerError> {
        let request = self.client.delete(self.url(&["orders"]));
        Ok(self
            .call::<Vec<CancelStatusDto>>(request, Expect::List)
            .await?
            .body)
    }

    /// The newest orders by id, to show canceled orders as they stand with one call.
    async fn recent_orders(&self) -> Result<HashMap<String, Order>, BrokerError> {
        let query = OrderQuery {
            status: OrderStatusFilter::All,
            symbol: None,
        };
        let reply = self
            .list_orders(&query, super::paging::MAX_ORDERS_LIMIT, None)
            .await?;
        let as_of = reply.received_at;
        Ok(reply
            .body
            .into_iter()
            .map(|o| (o.id.clone(), o.into_domain(as_of)))
            .collect())
    }
}

/// A refusal after which the replacement may exist anyway (a duplicate id; the old
/// order already replaced), or an outcome that is unknown.
fn refused_or_unknown(err: &BrokerError) -> bool {
    err.outcome_unknown() || matches!(err, BrokerError::Rejected { status: 422, .. })
}

/// The order found under the key is the answer only if it replaced `id` with what
/// was asked; anything else under the key means the key was used for something else.
fn same_replacement(
    found: &Order,
    replaces: Option<&str>,
    id: &str,
    asked: &OrderReplacement,
) -> Result<(), BrokerError> {
    let matches = |asked: Option<Decimal>, has: Option<Decimal>| {
        asked.is_none_or(|a| has.map(|h| h.normalize()) == Some(a.normalize()))
    };
    let same = replaces == Some(id)
        && matches(asked.quantity, Some(found.quantity))
        && matches(asked.limit_price, found.limit_price)
        && matches(asked.stop_price, found.stop_price)
        && asked
            .time_in_force
            .is_none_or(|tif| tif == found.time_in_force);
    if same {
        return Ok(());
    }
    Err(BrokerError::Rejected {
        status: 422,
        code: "idempotency_key_reused".into(),
        message: format!(
            "Alpaca already has a different order ({}) under this idempotency key",
            found.id
        ),
        field: Some("idempotency_key".into()),
    })
}
