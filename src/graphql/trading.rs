//! Inputs and payloads of the trading mutations beyond submit and cancel:
//! `replaceOrder`, `closePosition`, `cancelAllOrders` (docs/api.md). Their resolvers
//! are in `mutation.rs`, with the others.

use async_graphql::{InputObject, SimpleObject, ID};
use uuid::Uuid;

use super::enums::TimeInForce;
use super::scalars::Decimal;
use super::types::{Order, UserError};
use crate::orders;

#[derive(InputObject)]
pub(super) struct ReplaceOrderInput {
    /// The open order to replace.
    pub(super) order_id: ID,
    /// A fresh UUID per replace. Retry with the same key after any failure: the order
    /// is replaced at most once, and the retry answers that replacement.
    pub(super) idempotency_key: Uuid,
    /// What changes; everything left out stays as the order has it.
    pub(super) quantity: Option<Decimal>,
    pub(super) limit_price: Option<Decimal>,
    pub(super) stop_price: Option<Decimal>,
    pub(super) time_in_force: Option<TimeInForce>,
}

#[derive(SimpleObject)]
pub(super) struct ReplaceOrderPayload {
    /// The new order, with its own id: a replace is a new order at the broker.
    order: Option<Order>,
    /// The order replaced, as it stands after (then CANCELED; or, when the replace was
    /// refused, as it stands, e.g. FILLED).
    replaced_order: Option<Order>,
    /// True when this answer repeats the result of an earlier request with the same key.
    replayed: bool,
    user_errors: Vec<UserError>,
}

impl From<orders::ReplaceResult> for ReplaceOrderPayload {
    fn from(r: orders::ReplaceResult) -> Self {
        ReplaceOrderPayload {
            order: r.order.map(Order),
            replaced_order: r.replaced_order.map(Order),
            replayed: r.replayed,
            user_errors: r.user_errors.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(InputObject)]
pub(super) struct ClosePositionInput {
    pub(super) symbol: String,
    /// How much to close; the whole position when left out.
    pub(super) quantity: Option<Decimal>,
    /// A fresh UUID per close. Retry with the same key after any failure: the position
    /// is closed by one order, and the retry answers that order.
    pub(super) idempotency_key: Uuid,
}

#[derive(SimpleObject)]
pub(super) struct ClosePositionPayload {
    /// The order that closes the position (a market order of the opposite side).
    order: Option<Order>,
    /// True when this answer repeats the result of an earlier request with the same key.
    replayed: bool,
    user_errors: Vec<UserError>,
}

impl From<orders::SubmitResult> for ClosePositionPayload {
    fn from(r: orders::SubmitResult) -> Self {
        ClosePositionPayload {
            order: r.order.map(Order),
            replayed: r.replayed,
            user_errors: r.user_errors.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(InputObject)]
pub(super) struct CancelAllOrdersInput {
    /// A fresh UUID per request: a retry with it answers what the first attempt
    /// canceled.
    pub(super) idempotency_key: Uuid,
    /// Only this symbol's open orders; every open order when left out.
    pub(super) symbol: Option<String>,
}

#[derive(SimpleObject)]
pub(super) struct CancelAllOrdersPayload {
    /// The orders canceled (or being canceled, at a broker that cancels later).
    canceled: Vec<Order>,
    /// Open orders the broker did not cancel (filled meanwhile, or refused), as they
    /// stand; each also has a `userErrors` entry saying so.
    not_canceled: Vec<Order>,
    user_errors: Vec<UserError>,
}

impl From<orders::CancelAllResult> for CancelAllOrdersPayload {
    fn from(r: orders::CancelAllResult) -> Self {
        CancelAllOrdersPayload {
            canceled: r.canceled.into_iter().map(Order).collect(),
            not_canceled: r.not_canceled.into_iter().map(Order).collect(),
            user_errors: r.user_errors.into_iter().map(Into::into).collect(),
        }
    }
}
