//! `cancelAllOrders`: every open order (of one symbol, when given) canceled at the
//! broker. Cancelling again cancels what is left, so resending is safe; the answer is
//! kept under the key anyway, so a client's retry is told what the first attempt
//! canceled rather than that nothing was left.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::keyed::{KeyedAnswer, Sent};
use super::{
    rejection, status_words, CancelAllResult, OrderError, OrderService, UserError, UserErrorCode,
};
use crate::idempotency::Fingerprint;

impl OrderService {
    pub(crate) async fn cancel_all(
        self: &Arc<Self>,
        key: Uuid,
        symbol: Option<String>,
    ) -> Result<CancelAllResult, OrderError> {
        let canonical = format!("v1|cancel_all|{}", symbol.as_deref().unwrap_or_default());
        let print = Fingerprint(Sha256::digest(canonical.as_bytes()).into());
        self.keyed(key, print, move |this| async move {
            let sent = this
                .send_keyed(key, || this.broker.cancel_all_orders(symbol.as_deref()))
                .await?;
            Ok(match sent {
                Sent::Done { value, .. } => CancelAllResult {
                    user_errors: value
                        .not_canceled
                        .iter()
                        .map(|o| UserError {
                            field: Vec::new(),
                            code: UserErrorCode::OrderNotCancelable,
                            message: format!(
                                "order {} is {} and was not canceled",
                                o.id,
                                status_words(o.status)
                            ),
                        })
                        .collect(),
                    canceled: value.canceled,
                    not_canceled: value.not_canceled,
                },
                Sent::Refused {
                    code,
                    message,
                    field,
                } => CancelAllResult {
                    user_errors: vec![rejection(&code, &message, field.as_deref())],
                    ..CancelAllResult::default()
                },
            })
        })
        .await
    }
}

impl KeyedAnswer for CancelAllResult {
    fn key_reused() -> Self {
        CancelAllResult {
            user_errors: vec![UserError::new(
                "idempotencyKey",
                UserErrorCode::IdempotencyKeyReused,
                "this idempotency key was already used for a different request; use a new key",
            )],
            ..CancelAllResult::default()
        }
    }

    fn replayed(self) -> Self {
        self
    }
}
