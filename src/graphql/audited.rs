//! Builds the audit record and the idempotency metrics of one mutation attempt,
//! whatever its result, so `mutation.rs` only brackets each resolver.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::Context;
use serde_json::{json, Value};

use super::error::GatewayError;
use super::ErrorCode;
use crate::audit::{AuditLog, AuditRecord};
use crate::auth::Principal;
use crate::config::DEFAULT_ACCOUNT;
use crate::domain::{NewOrder, Order};
use crate::metrics::Metrics;
use crate::orders::{
    CancelAllResult, CancelResult, ReplaceResult, SubmitResult, UserError, UserErrorCode,
};

/// What a mutation ended with, in the terms of the audit log.
pub(crate) struct Outcome<'a> {
    pub order: Option<&'a Order>,
    pub user_errors: &'a [UserError],
    pub replayed: bool,
}

impl<'a> From<&'a SubmitResult> for Outcome<'a> {
    fn from(r: &'a SubmitResult) -> Self {
        Outcome {
            order: r.order.as_ref(),
            user_errors: &r.user_errors,
            replayed: r.replayed,
        }
    }
}

impl<'a> From<&'a ReplaceResult> for Outcome<'a> {
    fn from(r: &'a ReplaceResult) -> Self {
        Outcome {
            order: r.order.as_ref(),
            user_errors: &r.user_errors,
            replayed: r.replayed,
        }
    }
}

impl<'a> From<&'a CancelResult> for Outcome<'a> {
    fn from(r: &'a CancelResult) -> Self {
        Outcome {
            order: r.order.as_ref(),
            user_errors: &r.user_errors,
            replayed: false,
        }
    }
}

/// One call may cancel many orders: the record names none of them.
impl<'a> From<&'a CancelAllResult> for Outcome<'a> {
    fn from(r: &'a CancelAllResult) -> Self {
        Outcome {
            order: None,
            user_errors: &r.user_errors,
            replayed: false,
        }
    }
}

pub(crate) fn submit_input(order: &NewOrder) -> Value {
    json!({
        "symbol": order.symbol,
        "side": order.side,
        "type": order.order_type,
        "quantity": order.quantity.to_string(),
        "limitPrice": order.limit_price.map(|d| d.to_string()),
        "stopPrice": order.stop_price.map(|d| d.to_string()),
        "timeInForce": order.time_in_force,
    })
}

pub(crate) fn record(
    ctx: &Context<'_>,
    mutation: &'static str,
    idempotency_key: Option<String>,
    input: Value,
    started: Instant,
    result: Result<Outcome<'_>, &GatewayError>,
) {
    let (outcome, broker_order_id, replayed) = match &result {
        Ok(o) => (
            o.user_errors
                .first()
                .map_or_else(|| "OK".to_string(), |e| e.code.to_string()),
            o.order.map(|order| order.id.clone()),
            o.replayed,
        ),
        Err(e) => (e.code().to_string(), None, false),
    };
    // Decided on the codes here, where both enums are known, not on `outcome`'s text.
    let conflict = match &result {
        Ok(o) => o
            .user_errors
            .first()
            .is_some_and(|e| e.code == UserErrorCode::IdempotencyKeyReused),
        Err(e) => e.code() == ErrorCode::IdempotencyKeyInUse,
    };
    if let Some(metrics) = ctx.data_opt::<Arc<Metrics>>() {
        metrics.mutation(mutation, &outcome, replayed, conflict);
    }
    let Some(log) = ctx.data_opt::<Arc<AuditLog>>() else {
        return;
    };
    let principal = ctx.data_opt::<Principal>();
    log.record(&AuditRecord {
        at: chrono::Utc::now().to_rfc3339(),
        mutation,
        key_id: principal.map_or_else(|| Principal::ANONYMOUS.to_string(), |p| p.key_id.clone()),
        account: principal.map_or_else(|| DEFAULT_ACCOUNT.to_string(), |p| p.account.clone()),
        subject: principal.and_then(|p| p.subject.clone()),
        idempotency_key,
        input,
        outcome,
        broker_order_id,
        replayed,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
}
