//! `submitOrder`: validate, claim the key, send, learn the outcome, record it.

use sha2::{Digest, Sha256};
use std::sync::Arc;

use super::resend::Resend;
use super::validate::validate;
use super::{rejection, OrderError, OrderService, SubmitResult, UserError, UserErrorCode};
use crate::broker::BrokerError;
use crate::domain::NewOrder;
use crate::idempotency::{Claim, ClaimToken, Fingerprint, StoredOutcome};

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
        let key = order.idempotency_key;
        let fingerprint = fingerprint(&order);
        let claim = self
            .store
            .claim(
                &self.scope,
                key,
                fingerprint,
                self.settings.wait,
                self.settings.lease,
            )
            .await?;
        let token = match claim {
            Claim::Acquired(token) => token,
            Claim::Replay(stored) => {
                let mut result: SubmitResult = serde_json::from_slice(&stored.0)
                    .map_err(|e| OrderError::Corrupt(e.to_string()))?;
                result.replayed = true;
                return Ok(result);
            }
            Claim::Mismatch => {
                return Ok(SubmitResult::rejected(vec![UserError::new(
                    "idempotencyKey",
                    UserErrorCode::IdempotencyKeyReused,
                    "this idempotency key was already used for a different order; use a new key for a new order",
                )]))
            }
            Claim::InUse => return Err(OrderError::InUse),
        };
        // Once the key is ours, finish in a task of its own: if the client hangs up
        // mid-submit, axum drops this future, and the key must still be completed or
        // released rather than block every retry until its lease runs out.
        let this = Arc::clone(self);
        tokio::spawn(async move { this.settle(order, token).await })
            .await
            .map_err(|e| OrderError::Corrupt(format!("submit task failed: {e}")))?
    }

    /// Sends, then records the outcome under the claimed key, or gives the key back.
    async fn settle(&self, order: NewOrder, token: ClaimToken) -> Result<SubmitResult, OrderError> {
        let key = order.idempotency_key;
        match self.send(&order).await {
            Ok(result) => {
                let stored = StoredOutcome(serde_json::to_vec(&result).expect("result serializes"));
                if let Err(e) = self.store.complete_claim(&token, stored).await {
                    // The order stands; a retry that misses the store is still deduped
                    // by the broker, which holds the same key.
                    tracing::error!(error = %e, idempotency_key = %key, "could not record a submit outcome");
                }
                Ok(result)
            }
            Err(e) => {
                if let Err(release) = self.store.release_claim(&token).await {
                    tracing::error!(error = %release, idempotency_key = %key, "could not release an idempotency key");
                }
                Err(e)
            }
        }
    }

    /// Sends the order, resending with the same key until the broker's answer is
    /// known or the deadline passes (`resend`: the two retry loops and their one
    /// deadline). The broker replays the original order for a key it has seen, so
    /// a resend can never create a second order.
    async fn send(&self, order: &NewOrder) -> Result<SubmitResult, OrderError> {
        let mut resend = Resend::new(self.settings.deadline);
        let mut uncertain = false;
        loop {
            let Ok(result) = resend.send(self.broker.submit_order(order)).await else {
                return Err(OrderError::OutcomeUnknown);
            };
            let retry_after = match result {
                Ok(submitted) => {
                    return Ok(SubmitResult {
                        // A broker replay on our first send means an earlier attempt
                        // (one that answered OUTCOME_UNKNOWN, or a previous process)
                        // placed it. On a resend it is just our own attempt's answer.
                        replayed: submitted.replayed && resend.first(),
                        order: Some(submitted.order),
                        user_errors: Vec::new(),
                    });
                }
                // 409: our own earlier send with this key is still being processed.
                Err(BrokerError::Rejected { status: 409, .. }) => {
                    uncertain = true;
                    None
                }
                Err(BrokerError::Rejected {
                    code,
                    message,
                    field,
                    ..
                }) => {
                    return Ok(SubmitResult::rejected(vec![rejection(
                        &code,
                        &message,
                        field.as_deref(),
                    )]))
                }
                Err(BrokerError::RateLimited { retry_after }) => retry_after,
                Err(e) if e.outcome_unknown() => {
                    tracing::warn!(error = %e, idempotency_key = %order.idempotency_key, "submit outcome unknown; resending with the same key");
                    uncertain = true;
                    None
                }
                Err(e) => {
                    return Err(if uncertain {
                        OrderError::OutcomeUnknown
                    } else {
                        e.into()
                    })
                }
            };
            if let Err(wait) = resend.wait(retry_after).await {
                return Err(if uncertain {
                    OrderError::OutcomeUnknown
                } else {
                    BrokerError::RateLimited {
                        retry_after: Some(wait),
                    }
                    .into()
                });
            }
        }
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
