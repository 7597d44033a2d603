//! The `Mutation` root: `submitOrder`, `cancelOrder`, `replaceOrder`,
//! `closePosition` and `cancelAllOrders` (docs/api.md; the last three's inputs and
//! payloads are in `trading.rs`). Every one needs the `trade` scope and is audited;
//! business outcomes go in `userErrors`.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use uuid::Uuid;

use super::audited;
use super::enums::{OrderSide, OrderType, TimeInForce};
use super::error::{GatewayError, GqlResult};
use super::ids::{decode_as, NodeKind};
use super::scalars::Decimal;
use super::trading::{
    CancelAllOrdersInput, CancelAllOrdersPayload, ClosePositionInput, ClosePositionPayload,
    ReplaceOrderInput, ReplaceOrderPayload,
};
use super::types::{Order, UserError};
use crate::auth::Principal;
use crate::config::Scope;
use crate::domain::{NewOrder, OrderReplacement, PositionClose};
use crate::orders::{self, OrderService};

pub struct MutationRoot;

#[derive(InputObject)]
pub(super) struct SubmitOrderInput {
    /// A fresh UUID per order. Retry with the same key after any failure: the order
    /// is placed at most once.
    idempotency_key: Uuid,
    symbol: String,
    side: OrderSide,
    #[graphql(name = "type")]
    order_type: OrderType,
    quantity: Decimal,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    #[graphql(default_with = "Some(TimeInForce::Day)")]
    time_in_force: Option<TimeInForce>,
}

#[derive(InputObject)]
pub(super) struct CancelOrderInput {
    order_id: ID,
    /// Accepted for symmetry with submit; a cancel is idempotent by nature (cancelling
    /// a cancelled order returns it), so nothing is stored under it.
    idempotency_key: Option<Uuid>,
}

#[derive(SimpleObject)]
pub(super) struct SubmitOrderPayload {
    order: Option<Order>,
    /// True when this answer repeats the result of an earlier request with the same key.
    replayed: bool,
    user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub(super) struct CancelOrderPayload {
    order: Option<Order>,
    user_errors: Vec<UserError>,
}

fn require_trade(ctx: &Context<'_>) -> GqlResult<()> {
    match ctx.data_opt::<Principal>() {
        Some(p) if p.has(Scope::Trade) => Ok(()),
        _ => Err(GatewayError::Forbidden("trade")),
    }
}

#[Object(name = "Mutation")]
impl MutationRoot {
    async fn submit_order(
        &self,
        ctx: &Context<'_>,
        input: SubmitOrderInput,
    ) -> GqlResult<SubmitOrderPayload> {
        let started = Instant::now();
        let order = NewOrder {
            idempotency_key: input.idempotency_key,
            symbol: input.symbol.trim().to_string(),
            side: input.side.into(),
            order_type: input.order_type.into(),
            quantity: input.quantity.0,
            limit_price: input.limit_price.map(|d| d.0),
            stop_price: input.stop_price.map(|d| d.0),
            time_in_force: input.time_in_force.unwrap_or(TimeInForce::Day).into(),
        };
        let (key, audit_input) = (order.idempotency_key, audited::submit_input(&order));
        let result: GqlResult<orders::SubmitResult> = async {
            require_trade(ctx)?;
            Ok(ctx.data::<Arc<OrderService>>()?.submit(order).await?)
        }
        .await;
        let outcome = result.as_ref().map(audited::Outcome::from);
        audited::record(
            ctx,
            "submitOrder",
            Some(key.to_string()),
            audit_input,
            started,
            outcome,
        );
        let result = result?;
        Ok(SubmitOrderPayload {
            order: result.order.map(Order),
            replayed: result.replayed,
            user_errors: result.user_errors.into_iter().map(Into::into).collect(),
        })
    }

    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        input: CancelOrderInput,
    ) -> GqlResult<CancelOrderPayload> {
        let started = Instant::now();
        let audit_input = serde_json::json!({ "orderId": input.order_id.as_str() });
        let result: GqlResult<orders::CancelResult> = async {
            require_trade(ctx)?;
            let id = decode_as(&input.order_id, NodeKind::Order)?;
            Ok(ctx.data::<Arc<OrderService>>()?.cancel(&id).await?)
        }
        .await;
        let outcome = result.as_ref().map(audited::Outcome::from);
        let key = input.idempotency_key.map(|k| k.to_string());
        audited::record(ctx, "cancelOrder", key, audit_input, started, outcome);
        let result = result?;
        Ok(CancelOrderPayload {
            order: result.order.map(Order),
            user_errors: result.user_errors.into_iter().map(Into::into).collect(),
        })
    }

    /// Replaces an open order with a new one (new id; the old one ends CANCELED).
    /// Safe to retry with the same key: one replacement, whatever happens.
    async fn replace_order(
        &self,
        ctx: &Context<'_>,
        input: ReplaceOrderInput,
    ) -> GqlResult<ReplaceOrderPayload> {
        let started = Instant::now();
        let number = |d: &Option<Decimal>| d.as_ref().map(|d| d.0.to_string());
        let audit_input = serde_json::json!({
            "orderId": input.order_id.as_str(),
            "quantity": number(&input.quantity),
            "limitPrice": number(&input.limit_price),
            "stopPrice": number(&input.stop_price),
            "timeInForce": input.time_in_force.map(crate::domain::TimeInForce::from),
        });
        let key = input.idempotency_key;
        let result: GqlResult<orders::ReplaceResult> = async {
            require_trade(ctx)?;
            let id = decode_as(&input.order_id, NodeKind::Order)?;
            let replacement = OrderReplacement {
                idempotency_key: key,
                quantity: input.quantity.map(|d| d.0),
                limit_price: input.limit_price.map(|d| d.0),
                stop_price: input.stop_price.map(|d| d.0),
                time_in_force: input.time_in_force.map(Into::into),
            };
            Ok(ctx
                .data::<Arc<OrderService>>()?
                .replace(id, replacement)
                .await?)
        }
        .await;
        let outcome = result.as_ref().map(audited::Outcome::from);
        let key = Some(key.to_string());
        audited::record(ctx, "replaceOrder", key, audit_input, started, outcome);
        Ok(result?.into())
    }

    /// Closes (all or part of) a position with a market order of the opposite side.
    /// Safe to retry with the same key: one closing order, whatever happens.
    async fn close_position(
        &self,
        ctx: &Context<'_>,
        input: ClosePositionInput,
    ) -> GqlResult<ClosePositionPayload> {
        let started = Instant::now();
        let close = PositionClose {
            idempotency_key: input.idempotency_key,
            symbol: input.symbol.trim().to_string(),
            quantity: input.quantity.map(|d| d.0),
        };
        let audit_input = serde_json::json!({
            "symbol": close.symbol,
            "quantity": close.quantity.map(|q| q.to_string()),
        });
        let key = close.idempotency_key;
        let result: GqlResult<orders::SubmitResult> = async {
            require_trade(ctx)?;
            Ok(ctx
                .data::<Arc<OrderService>>()?
                .close_position(close)
                .await?)
        }
        .await;
        let outcome = result.as_ref().map(audited::Outcome::from);
        let key = Some(key.to_string());
        audited::record(ctx, "closePosition", key, audit_input, started, outcome);
        Ok(result?.into())
    }

    /// Cancels every open order, or every open order of one symbol.
    async fn cancel_all_orders(
        &self,
        ctx: &Context<'_>,
        input: CancelAllOrdersInput,
    ) -> GqlResult<CancelAllOrdersPayload> {
        let started = Instant::now();
        let symbol = input
            .symbol
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let audit_input = serde_json::json!({ "symbol": symbol });
        let key = input.idempotency_key;
        let result: GqlResult<orders::CancelAllResult> = async {
            require_trade(ctx)?;
            Ok(ctx
                .data::<Arc<OrderService>>()?
                .cancel_all(key, symbol)
                .await?)
        }
        .await;
        let outcome = result.as_ref().map(audited::Outcome::from);
        let key = Some(key.to_string());
        audited::record(ctx, "cancelAllOrders", key, audit_input, started, outcome);
        Ok(result?.into())
    }
}
