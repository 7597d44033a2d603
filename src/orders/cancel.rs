//! `cancelOrder`: naturally idempotent at the broker (cancelling a cancelled order
//! returns it), so it is resent on an unknown outcome without a store entry.

use super::resend::Resend;
use super::{
    rejection, status_words, CancelResult, OrderError, OrderService, UserError, UserErrorCode,
};
use crate::broker::BrokerError;
use crate::domain::OrderStatus;

impl OrderService {
    pub(crate) async fn cancel(&self, order_id: &str) -> Result<CancelResult, OrderError> {
        let mut resend = Resend::new(self.settings.deadline);
        loop {
            let unconfirmed = || -> OrderError {
                BrokerError::Unavailable {
                    status: None,
                    reason: "the cancel could not be confirmed in time".into(),
                }
                .into()
            };
            let Ok(result) = resend.send(self.broker.cancel_order(order_id)).await else {
                return Err(unconfirmed());
            };
            let retry_after = match result {
                Ok(order) => {
                    return Ok(CancelResult {
                        order: Some(order),
                        user_errors: Vec::new(),
                    })
                }
                Err(BrokerError::NotFound) => {
                    return Ok(CancelResult {
                        order: None,
                        user_errors: vec![UserError::new(
                            "orderId",
                            UserErrorCode::OrderNotFound,
                            "the broker has no order with this id",
                        )],
                    })
                }
                Err(BrokerError::Rejected {
                    code,
                    message,
                    field,
                    ..
                }) => {
                    return self
                        .not_cancelable(order_id, &code, &message, field.as_deref())
                        .await
                }
                Err(BrokerError::RateLimited { retry_after }) => retry_after,
                Err(e) if e.outcome_unknown() => None,
                Err(e) => return Err(e.into()),
            };
            if resend.wait(retry_after).await.is_err() {
                return Err(unconfirmed());
            }
        }
    }

    /// The broker refused: if the order is already cancelled that is the outcome the
    /// client wanted; otherwise say why, with the order as it stands.
    async fn not_cancelable(
        &self,
        order_id: &str,
        code: &str,
        message: &str,
        field: Option<&str>,
    ) -> Result<CancelResult, OrderError> {
        let order = crate::request::RequestScope::for_mutation(self.broker.order(order_id))
            .await
            .ok();
        if code != "order_not_cancelable" {
            return Ok(CancelResult {
                order,
                user_errors: vec![rejection(code, message, field)],
            });
        }
        if order
            .as_ref()
            .is_some_and(|o| o.status == OrderStatus::Canceled)
        {
            return Ok(CancelResult {
                order,
                user_errors: Vec::new(),
            });
        }
        let status = order.as_ref().map(|o| status_words(o.status));
        Ok(CancelResult {
            order,
            user_errors: vec![UserError::new(
                "orderId",
                UserErrorCode::OrderNotCancelable,
                match status {
                    Some(s) => format!("the order is {s} and can no longer be cancelled"),
                    None => format!("the order can no longer be cancelled: {message}"),
                },
            )],
        })
    }
}
