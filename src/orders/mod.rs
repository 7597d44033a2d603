//! Orders: pre-trade validation, and the mutations (submit, cancel, replace, close a
//! position, cancel every open order) as flows that are safe to retry.
//!
//! The promise to a client: retrying `submitOrder` with the same idempotency key
//! after any failure never places a second order, and a submit is never reported as
//! failed when it may have succeeded. The idempotency store dedups retries that reach
//! the gateway; the key forwarded to the broker dedups our own resends and survives a
//! gateway restart.

mod cancel;
mod cancel_all;
mod close;
mod collar;
mod keyed;
mod replace;
mod resend;
mod submit;
mod user_error;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{Broker, BrokerError};
use crate::domain::{Order, OrderStatus};
use crate::idempotency::{IdempotencyStore, StoreError};
pub(crate) use user_error::{UserError, UserErrorCode};

/// What `submitOrder` answers. Stored under the idempotency key and replayed as is.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SubmitResult {
    pub order: Option<Order>,
    /// True when this answer repeats an earlier attempt's result (not stored).
    #[serde(skip)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

impl SubmitResult {
    fn rejected(user_errors: Vec<UserError>) -> Self {
        SubmitResult {
            order: None,
            replayed: false,
            user_errors,
        }
    }
}

/// What `replaceOrder` answers: the new order and the one it replaced (as it stands
/// after; for a refusal, the order as it stands). Stored under the key and replayed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReplaceResult {
    pub order: Option<Order>,
    pub replaced_order: Option<Order>,
    /// True when this answer repeats an earlier attempt's result (not stored).
    #[serde(skip)]
    pub replayed: bool,
    pub user_errors: Vec<UserError>,
}

impl ReplaceResult {
    fn rejected(replaced_order: Option<Order>, user_errors: Vec<UserError>) -> Self {
        ReplaceResult {
            order: None,
            replaced_order,
            replayed: false,
            user_errors,
        }
    }
}

/// What `cancelAllOrders` answers. Stored under the key, so a retry answers the same
/// lists rather than an empty one (everything was canceled the first time).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CancelAllResult {
    pub canceled: Vec<Order>,
    pub not_canceled: Vec<Order>,
    pub user_errors: Vec<UserError>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CancelResult {
    pub order: Option<Order>,
    pub user_errors: Vec<UserError>,
}

/// Failures that are not a business answer: the client retries (or not) per code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Broker(BrokerError),
    /// Another attempt with this key is still running.
    #[error("the idempotency key is in use")]
    InUse,
    /// The broker may or may not have the order; the key stays claimable so the
    /// client's retry with it settles the question.
    #[error("outcome unknown")]
    OutcomeUnknown,
    /// The idempotency store is down: refuse rather than risk a duplicate.
    #[error(transparent)]
    Store(StoreError),
    #[error("stored idempotency record unreadable: {0}")]
    Corrupt(String),
}

impl From<BrokerError> for OrderError {
    fn from(err: BrokerError) -> Self {
        OrderError::Broker(err)
    }
}

impl From<StoreError> for OrderError {
    fn from(err: StoreError) -> Self {
        OrderError::Store(err)
    }
}

/// Settings of the submit flow (`idempotency.*` and `orders.*` in
/// docs/configuration.md).
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderSettings {
    /// How long a concurrent duplicate waits for the first attempt's result.
    pub wait: Duration,
    /// How long an in-flight claim lives if its attempt never finishes.
    pub lease: Duration,
    /// The one deadline of a submit or cancel, every send and retry included
    /// (`resend`); past it a submit answers OUTCOME_UNKNOWN.
    pub deadline: Duration,
    /// The price collar as a fraction of the quote (`collar`), when on.
    pub collar: Option<rust_decimal::Decimal>,
}

/// Submits and cancels orders for one broker account.
pub(crate) struct OrderService {
    broker: Arc<dyn Broker>,
    store: Arc<dyn IdempotencyStore>,
    /// Idempotency keys are unique per broker account, as at the broker.
    scope: String,
    settings: OrderSettings,
}

impl OrderService {
    pub(crate) fn new(
        broker: Arc<dyn Broker>,
        store: Arc<dyn IdempotencyStore>,
        scope: String,
        settings: OrderSettings,
    ) -> Self {
        OrderService {
            broker,
            store,
            scope,
            settings,
        }
    }
}

/// Maps a broker rejection to the `userErrors` code the client can act on.
fn rejection(code: &str, message: &str, field: Option<&str>) -> UserError {
    let field = field.map(camel_case).unwrap_or_default();
    UserError {
        field: if field.is_empty() {
            Vec::new()
        } else {
            vec!["input".into(), field]
        },
        code: UserErrorCode::from_broker(code),
        message: format!("the broker rejected the order: {message}"),
    }
}

/// An order status as a message says it ("partially filled", not "partiallyfilled").
fn status_words(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Accepted => "accepted",
        OrderStatus::PartiallyFilled => "partially filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Canceled => "canceled",
        OrderStatus::PendingCancel => "pending cancel",
        OrderStatus::Rejected => "rejected",
        OrderStatus::Expired => "expired",
    }
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
