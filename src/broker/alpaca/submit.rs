//! `POST /v2/orders` made idempotent on top of Alpaca's `client_order_id`.
//!
//! The orders layer resends a submit with the same idempotency key until it learns
//! the outcome, and expects a broker that has seen the key to answer with the
//! original order (`replayed: true`). Alpaca instead refuses the duplicate with 422.
//! So a duplicate, or a send whose outcome is unknown, is followed by a lookup of
//! the order under its client id: found, it is the answer (or, if it is a different
//! order, the key was reused); not found after a duplicate, the original is still
//! being created, which is an unknown outcome the orders layer resends on.

use super::client_id;
use super::response::{self, Expect};
use super::wire::{NewOrderDto, OrderDto};
use super::{AlpacaBroker, Reply};
use crate::broker::BrokerError;
use crate::domain::{NewOrder, Order, Submitted};

impl AlpacaBroker {
    pub(super) async fn submit(&self, order: &NewOrder) -> Result<Submitted, BrokerError> {
        let client_order_id = client_id::from_key(order.idempotency_key);
        let request = self
            .client
            .post(self.url(&["orders"]))
            .json(&NewOrderDto::new(order, &client_order_id));
        match self.call::<OrderDto>(request, Expect::Submit).await {
            Ok(reply) => Ok(Submitted {
                order: reply.body.into_domain(reply.received_at),
                replayed: false,
            }),
            Err(err) if response::is_duplicate_client_id(&err) => {
                tracing::info!(
                    client_order_id,
                    "Alpaca has this client order id; reading it back"
                );
                match self.by_client_order_id(&client_order_id).await {
                    // An earlier send (a lost answer, a previous process) placed it.
                    Ok(existing) => settle(existing, order, true),
                    Err(BrokerError::RateLimited { retry_after }) => {
                        Err(BrokerError::RateLimited { retry_after })
                    }
                    Err(lookup) => Err(BrokerError::Unavailable {
                        status: None,
                        reason: format!(
                            "Alpaca refused the client order id as a duplicate, and reading the order back failed: {lookup}"
                        ),
                    }),
                }
            }
            Err(err) if err.outcome_unknown() => {
                match self.by_client_order_id(&client_order_id).await {
                    // This very send placed it before its answer was lost: not a replay.
                    Ok(existing) => settle(existing, order, false),
                    Err(_) => Err(err),
                }
            }
            Err(err) => Err(err),
        }
    }

    async fn by_client_order_id(&self, client_order_id: &str) -> Result<Order, BrokerError> {
        let reply = self.order_dto_by_client_id(client_order_id).await?;
        Ok(reply.body.into_domain(reply.received_at))
    }

    /// The order under a client order id, as Alpaca sent it (a replace needs its
    /// `replaces`, which the domain order does not carry).
    #[tracing::instrument(skip_all, fields(http.route = "GET /v2/orders:by_client_order_id", status = tracing::field::Empty, latency_ms = tracing::field::Empty))]
    pub(super) async fn order_dto_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Reply<OrderDto>, BrokerError> {
        let mut url = self.url(&["orders:by_client_order_id"]);
        url.query_pairs_mut()
            .append_pair("client_order_id", client_order_id);
        self.call::<OrderDto>(self.client.get(url), Expect::Lookup)
            .await
    }
}

/// The order found under the key is the answer only if it is the order asked for.
fn settle(existing: Order, asked: &NewOrder, replayed: bool) -> Result<Submitted, BrokerError> {
    let same = existing.symbol.eq_ignore_ascii_case(&asked.symbol)
        && existing.side == asked.side
        && existing.order_type == asked.order_type
        && existing.quantity.normalize() == asked.quantity.normalize()
        && existing.limit_price.map(|p| p.normalize()) == asked.limit_price.map(|p| p.normalize())
        && existing.stop_price.map(|p| p.normalize()) == asked.stop_price.map(|p| p.normalize())
        && existing.time_in_force == asked.time_in_force;
    if !same {
        return Err(BrokerError::Rejected {
            status: 422,
            code: "idempotency_key_reused".into(),
            message: format!(
                "Alpaca already has a different order ({}) under this idempotency key",
                existing.id
            ),
            field: Some("idempotency_key".into()),
        });
    }
    Ok(Submitted {
        order: existing,
        replayed,
    })
}
