//! What every mutation under an idempotency key shares (submit, replace, close,
//! cancel-all): the claim on the key, the answer stored and replayed, and the resend
//! loop that never turns an unknown outcome into a failure or a second action.

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use super::resend::Resend;
use super::{OrderError, OrderService};
use crate::broker::BrokerError;
use crate::idempotency::{Claim, ClaimToken, Fingerprint, StoredOutcome};

/// The answer of a keyed mutation: stored under the key when it is known, and what a
/// replay returns.
pub(super) trait KeyedAnswer: Serialize + DeserializeOwned + Send + 'static {
    /// The answer to the key used again for a different request.
    fn key_reused() -> Self;
    /// Marks an answer read back from the store (`replayed: true` where it shows).
    fn replayed(self) -> Self;
}

/// How the broker finally answered one keyed call.
pub(super) enum Sent<T> {
    /// `first_send`: the first send had this answer. A broker replay then means an
    /// earlier attempt (one that answered OUTCOME_UNKNOWN, or a previous process)
    /// acted; on a resend it is just our own attempt's answer.
    Done { value: T, first_send: bool },
    /// The broker said no, with its code, message and the field it blames.
    Refused {
        code: String,
        message: String,
        field: Option<String>,
    },
}

impl OrderService {
    /// Runs `work` at most once per key: claims the key with the input's fingerprint,
    /// replays a stored answer, refuses a key used for something else, and once the key
    /// is ours stores `work`'s answer (or gives the key back when it failed, so the
    /// client's retry settles the question).
    pub(super) async fn keyed<R, Fut>(
        self: &Arc<Self>,
        key: Uuid,
        fingerprint: Fingerprint,
        work: impl FnOnce(Arc<Self>) -> Fut,
    ) -> Result<R, OrderError>
    where
        R: KeyedAnswer,
        Fut: Future<Output = Result<R, OrderError>> + Send + 'static,
    {
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
                let answer: R = serde_json::from_slice(&stored.0)
                    .map_err(|e| OrderError::Corrupt(e.to_string()))?;
                return Ok(answer.replayed());
            }
            Claim::Mismatch => return Ok(R::key_reused()),
            Claim::InUse => return Err(OrderError::InUse),
        };
        // Once the key is ours, finish in a task of its own: if the client hangs up
        // mid-request, axum drops this future, and the key must still be completed or
        // released rather than block every retry until its lease runs out.
        let this = Arc::clone(self);
        let work = work(Arc::clone(self));
        tokio::spawn(async move { this.settle(key, token, work).await })
            .await
            .map_err(|e| OrderError::Corrupt(format!("mutation task failed: {e}")))?
    }

    /// Waits for the answer, then records it under the claimed key, or gives the key
    /// back.
    async fn settle<R: KeyedAnswer>(
        &self,
        key: Uuid,
        token: ClaimToken,
        work: impl Future<Output = Result<R, OrderError>>,
    ) -> Result<R, OrderError> {
        match work.await {
            Ok(answer) => {
                let stored = StoredOutcome(serde_json::to_vec(&answer).expect("answer serializes"));
                if let Err(e) = self.store.complete_claim(&token, stored).await {
                    // The action stands; a retry that misses the store is still deduped
                    // by the broker, which holds the same key.
                    tracing::error!(error = %e, idempotency_key = %key, "could not record a mutation's outcome");
                }
                Ok(answer)
            }
            Err(e) => {
                if let Err(release) = self.store.release_claim(&token).await {
                    tracing::error!(error = %release, idempotency_key = %key, "could not release an idempotency key");
                }
                Err(e)
            }
        }
    }

    /// Sends `call`, resending with the same key until the broker's answer is known or
    /// the deadline passes (`resend`: the two retry loops and their one deadline). The
    /// broker answers a key it has seen with what it did the first time, so a resend
    /// can never act twice.
    pub(super) async fn send_keyed<T, F, Fut>(
        &self,
        key: Uuid,
        call: F,
    ) -> Result<Sent<T>, OrderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        let mut resend = Resend::new(self.settings.deadline);
        let mut uncertain = false;
        loop {
            let Ok(result) = resend.send(call()).await else {
                return Err(OrderError::OutcomeUnknown);
            };
            let retry_after = match result {
                Ok(value) => {
                    return Ok(Sent::Done {
                        value,
                        first_send: resend.first(),
                    })
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
                    return Ok(Sent::Refused {
                        code,
                        message,
                        field,
                    })
                }
                Err(BrokerError::RateLimited { retry_after }) => retry_after,
                Err(e) if e.outcome_unknown() => {
                    tracing::warn!(error = %e, idempotency_key = %key, "outcome unknown; resending with the same key");
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
