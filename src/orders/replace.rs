//! `replaceOrder`: validated like a submit (the order as it would be after the
//! change), then under the key (`keyed`) sent until the broker's answer is known. The
//! key travels to the broker, which answers a key it has seen with the same
//! replacement, so a lost answer never becomes a second replacement.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::keyed::{KeyedAnswer, Sent};
use super::validate::validate;
use super::{
    rejection, status_words, OrderError, OrderService, ReplaceResult, UserError, UserErrorCode,
};
use crate::broker::BrokerError;
use crate::domain::{NewOrder, Order, OrderReplacement};
use crate::idempotency::Fingerprint;
use crate::request::RequestScope;

impl OrderService {
    /// Replaces the open order `order_id` at most once per idempotency key.
    pub(crate) async fn replace(
        self: &Arc<Self>,
        order_id: String,
        replacement: OrderReplacement,
    ) -> Result<ReplaceResult, OrderError> {
        let OrderReplacement {
            quantity,
            limit_price,
            stop_price,
            time_in_force,
            ..
        } = &replacement;
        if quantity.is_none()
            && limit_price.is_none()
            && stop_price.is_none()
            && time_in_force.is_none()
        {
            return Ok(ReplaceResult::rejected(
                None,
                vec![UserError {
                    field: Vec::new(),
                    code: UserErrorCode::NothingToReplace,
                    message: "give at least one of quantity, limitPrice, stopPrice, timeInForce"
                        .into(),
                }],
            ));
        }
        // The order as it is now (its state does not matter here: an order our own
        // earlier attempt replaced is over, yet a retry must get that replacement,
        // which only the broker, holding the key, can answer).
        let order = match RequestScope::for_mutation(self.broker.order(&order_id)).await {
            Ok(order) => order,
            Err(BrokerError::NotFound) => return Ok(not_found()),
            Err(e) => return Err(e.into()),
        };
        let instrument =
            match RequestScope::for_mutation(self.broker.instrument(&order.symbol)).await {
                Ok(i) => Some(i),
                Err(BrokerError::NotFound) => None,
                Err(e) => return Err(e.into()),
            };
        let after = NewOrder {
            idempotency_key: replacement.idempotency_key,
            symbol: order.symbol.clone(),
            side: order.side,
            order_type: order.order_type,
            quantity: quantity.unwrap_or(order.quantity),
            limit_price: limit_price.or(order.limit_price),
            stop_price: stop_price.or(order.stop_price),
            time_in_force: time_in_force.unwrap_or(order.time_in_force),
        };
        let errors: Vec<UserError> = validate(&after, instrument.as_ref())
            .into_iter()
            .map(|mut e| {
                // The symbol is the order's: what the client named is the order.
                if e.field.last().is_some_and(|f| f == "symbol") {
                    e.field = vec!["input".into(), "orderId".into()];
                }
                e
            })
            .collect();
        if !errors.is_empty() {
            return Ok(ReplaceResult::rejected(Some(order), errors));
        }
        if let Some(error) = self.outside_collar(&after).await {
            return Ok(ReplaceResult::rejected(Some(order), vec![error]));
        }
        let key = replacement.idempotency_key;
        let print = fingerprint(&order_id, &replacement);
        self.keyed(key, print, move |this| async move {
            this.send_replace(&order_id, &replacement).await
        })
        .await
    }

    async fn send_replace(
        &self,
        order_id: &str,
        replacement: &OrderReplacement,
    ) -> Result<ReplaceResult, OrderError> {
        let sent = self
            .send_keyed(replacement.idempotency_key, || {
                self.broker.replace_order(order_id, replacement)
            })
            .await;
        Ok(match sent {
            Ok(Sent::Done { value, first_send }) => ReplaceResult {
                replayed: value.replayed && first_send,
                order: Some(value.order),
                replaced_order: value.replaced,
                user_errors: Vec::new(),
            },
            Ok(Sent::Refused {
                code,
                message,
                field,
            }) => {
                let now = RequestScope::for_mutation(self.broker.order(order_id))
                    .await
                    .ok();
                ReplaceResult::rejected(now.clone(), vec![refusal(&code, &message, field, now)])
            }
            Err(OrderError::Broker(BrokerError::NotFound)) => not_found(),
            Err(e) => return Err(e),
        })
    }
}

/// A refusal that is about the order's state names the order (and says what state),
/// as the cancel's does; any other names the field the broker blamed.
fn refusal(code: &str, message: &str, field: Option<String>, now: Option<Order>) -> UserError {
    let mut error = rejection(code, message, field.as_deref());
    if error.code == UserErrorCode::OrderNotReplaceable {
        error.field = vec!["input".into(), "orderId".into()];
        if let Some(order) = now {
            error.message = format!(
                "the order is {} and can no longer be replaced",
                status_words(order.status)
            );
        }
    }
    error
}

fn not_found() -> ReplaceResult {
    ReplaceResult::rejected(
        None,
        vec![UserError::new(
            "orderId",
            UserErrorCode::OrderNotFound,
            "the broker has no order with this id",
        )],
    )
}

impl KeyedAnswer for ReplaceResult {
    fn key_reused() -> Self {
        ReplaceResult::rejected(
            None,
            vec![UserError::new(
                "idempotencyKey",
                UserErrorCode::IdempotencyKeyReused,
                "this idempotency key was already used for a different request; use a new key for a new replace",
            )],
        )
    }

    fn replayed(mut self) -> Self {
        self.replayed = true;
        self
    }
}

/// The normalized input: the order and what changes, numbers compared as numbers.
fn fingerprint(order_id: &str, r: &OrderReplacement) -> Fingerprint {
    let number =
        |d: Option<rust_decimal::Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    let canonical = format!(
        "v1|replace|{order_id}|{}|{}|{}|{:?}",
        number(r.quantity),
        number(r.limit_price),
        number(r.stop_price),
        r.time_in_force,
    );
    Fingerprint(Sha256::digest(canonical.as_bytes()).into())
}
