//! `submitOrder`: validate, then under the key (`keyed`): send, learn the outcome,
//! record it.

use sha2::{Digest, Sha256};
use std::sync::Arc;

use super::keyed::{KeyedAnswer, Sent};
use super::validate::validate;
use super::{rejection, OrderError, OrderService, SubmitResult, UserError, UserErrorCode};
use crate::broker::BrokerError;
use crate::domain::{NewOrder, Submitted};
use crate::idempotency::Fingerprint;

impl OrderService {
    /// Submits `order` at most once per idempotency key, whatever the client retries.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        order: NewOrder,
    ) -> Result<SubmitResult, OrderError> {
        let check =
            crate::request::RequestScope::for_mutation(self.broker.instrument(&order.symbol));
        let instrument = match check.await {
            Ok(i) => Some(i),
            Err(BrokerError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let errors = validate(&order, instrument.as_ref());
        if !errors.is_empty() {
            return Ok(SubmitResult::rejected(errors));
        }
        if let Some(error) = self.outside_collar(&order).await {
            return Ok(SubmitResult::rejected(vec![error]));
        }
        let key = order.idempotency_key;
        let fingerprint = fingerprint(&order);
        self.keyed(key, fingerprint, move |this| async move {
            this.send(&order).await
        })
        .await
    }

    /// Sends the order until the broker's answer is known (`send_keyed`).
    async fn send(&self, order: &NewOrder) -> Result<SubmitResult, OrderError> {
        let sent = self
            .send_keyed(order.idempotency_key, || self.broker.submit_order(order))
            .await?;
        Ok(sent.into())
    }
}

/// A submit's final answer, and a close's (a close is a keyed market order).
impl From<Sent<Submitted>> for SubmitResult {
    fn from(sent: Sent<Submitted>) -> Self {
        match sent {
            Sent::Done { value, first_send } => SubmitResult {
                replayed: value.replayed && first_send,
                order: Some(value.order),
                user_errors: Vec::new(),
            },
            Sent::Refused {
                code,
                message,
                field,
            } => SubmitResult::rejected(vec![rejection(&code, &message, field.as_deref())]),
        }
    }
}

impl KeyedAnswer for SubmitResult {
    fn key_reused() -> Self {
        SubmitResult::rejected(vec![UserError::new(
            "idempotencyKey",
            UserErrorCode::IdempotencyKeyReused,
            "this idempotency key was already used for a different order; use a new key for a new order",
        )])
    }

    fn replayed(mut self) -> Self {
        self.replayed = true;
        self
    }
}

/// The normalized input: `"10"` and `"10.00"` are the same quantity, so a client
/// that reformats a number on retry is not told its key was reused.
fn fingerprint(order: &NewOrder) -> Fingerprint {
    let canonical = format!(
        "v1|{}|{:?}|{:?}|{}|{}|{}|{:?}",
        order.symbol,
        order.side,
        order.order_type,
        order.quantity.normalize(),
        order
            .limit_price
            .map(|p| p.normalize().to_string())
            .unwrap_or_default(),
        order
            .stop_price
            .map(|p| p.normalize().to_string())
            .unwrap_or_default(),
        order.time_in_force,
    );
    Fingerprint(Sha256::digest(canonical.as_bytes()).into())
}
