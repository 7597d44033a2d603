//! `closePosition`: an order of the opposite side for the position (or the part
//! asked for), under the key like a submit. Which order closes it is the broker's (or
//! its adapter's) to decide from the position as it stands; this checks what can be
//! checked before anything is sent.

use std::sync::Arc;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::{OrderError, OrderService, SubmitResult, UserError, UserErrorCode};
use crate::broker::BrokerError;
use crate::domain::PositionClose;
use crate::idempotency::Fingerprint;
use crate::request::RequestScope;

impl OrderService {
    /// Closes the position at most once per idempotency key.
    pub(crate) async fn close_position(
        self: &Arc<Self>,
        close: PositionClose,
    ) -> Result<SubmitResult, OrderError> {
        let instrument =
            match RequestScope::for_mutation(self.broker.instrument(&close.symbol)).await {
                Ok(i) => i,
                Err(BrokerError::NotFound) => {
                    return Ok(SubmitResult::rejected(vec![UserError::new(
                        "symbol",
                        UserErrorCode::UnknownSymbol,
                        format!("`{}` is not an instrument of this broker", close.symbol),
                    )]))
                }
                Err(e) => return Err(e.into()),
            };
        if let Some(quantity) = close.quantity {
            let lot = instrument.lot_size;
            let refusal = if quantity <= Decimal::ZERO {
                Some((
                    UserErrorCode::InvalidQuantity,
                    "quantity must be greater than zero".to_string(),
                ))
            } else if lot > Decimal::ZERO && !(quantity % lot).is_zero() {
                Some((
                    UserErrorCode::LotSize,
                    format!("quantity {quantity} is not a multiple of the lot size {lot}"),
                ))
            } else {
                None
            };
            if let Some((code, message)) = refusal {
                return Ok(SubmitResult::rejected(vec![UserError::new(
                    "quantity", code, message,
                )]));
            }
        }
        let key = close.idempotency_key;
        let print = fingerprint(&close);
        self.keyed(key, print, move |this| async move {
            this.send_close(&close).await
        })
        .await
    }

    async fn send_close(&self, close: &PositionClose) -> Result<SubmitResult, OrderError> {
        let sent = self
            .send_keyed(close.idempotency_key, || self.broker.close_position(close))
            .await?;
        Ok(sent.into())
    }
}

/// The normalized input. Another kind of request under the same key (a submit) is a
/// different fingerprint, so it is a reuse, not a replay.
fn fingerprint(close: &PositionClose) -> Fingerprint {
    let quantity = close
        .quantity
        .map(|q| q.normalize().to_string())
        .unwrap_or_default();
    let canonical = format!("v1|close|{}|{quantity}", close.symbol);
    Fingerprint(Sha256::digest(canonical.as_bytes()).into())
}
