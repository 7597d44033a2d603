//! The `Query` root: reads that go through the `Broker` (and so through the cache
//! once it wraps the broker).

use std::sync::Arc;

use async_graphql::{Context, InputObject, Object, ID};

use super::connection::{ConnectionArgs, Pager};
use super::enums::OrderStatusFilter;
use super::error::{GatewayError, GqlResult};
use super::ids::{decode, decode_as, NodeKind};
use super::quote::{load_quote, prefetch_quotes, Quote};
use super::types::{
    Account, Instrument, InstrumentConnection, Node, Order, OrderConnection, Position,
    PositionConnection,
};
use crate::broker::{Broker, BrokerError, MAX_BROKER_PAGE};
use crate::domain::{self, OrderQuery, PageRequest};

/// How many position pages `node(id:)` may read to find a position by symbol,
/// since the broker has no endpoint for one position.
const MAX_POSITION_PAGES: usize = 10;

pub struct QueryRoot;

#[derive(InputObject)]
pub(super) struct OrderFilter {
    #[graphql(default_with = "Some(OrderStatusFilter::All)")]
    status: Option<OrderStatusFilter>,
    symbol: Option<String>,
}

fn broker<'a>(ctx: &Context<'a>) -> GqlResult<&'a Arc<dyn Broker>> {
    Ok(ctx.data::<Arc<dyn Broker>>()?)
}

/// `Ok(None)` for a broker 404, so `order(id:)` of an unknown order is `null`.
fn found<T>(result: Result<T, BrokerError>) -> Result<Option<T>, GatewayError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(BrokerError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[Object(name = "Query")]
impl QueryRoot {
    /// Fetches any object by its global id (Relay).
    async fn node(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Node>> {
        let broker = broker(ctx)?;
        let (kind, local) = decode(&id)?;
        let node = match kind {
            NodeKind::Account => {
                let account = broker.account().await?;
                (account.id == local).then_some(Node::Account(Account(account)))
            }
            NodeKind::Instrument => {
                found(broker.instrument(&local).await)?.map(|i| Node::Instrument(Instrument(i)))
            }
            NodeKind::Order => found(broker.order(&local).await)?.map(|o| Node::Order(Order(o))),
            NodeKind::Position => find_position(broker.as_ref(), &local)
                .await?
                .map(|p| Node::Position(Position(p))),
        };
        Ok(node)
    }

    async fn account(&self, ctx: &Context<'_>) -> GqlResult<Account> {
        let account = broker(ctx)?.account().await?;
        Ok(Account(account))
    }

    /// `null` when the broker does not list the symbol.
    async fn instrument(&self, ctx: &Context<'_>, symbol: String) -> GqlResult<Option<Instrument>> {
        Ok(found(broker(ctx)?.instrument(&symbol).await)?.map(Instrument))
    }

    async fn instruments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> GqlResult<InstrumentConnection> {
        let broker = broker(ctx)?;
        let args = ConnectionArgs {
            first,
            after,
            last,
            before,
        };
        let slice = ctx
            .data::<Pager>()?
            .resolve(
                "instruments",
                args,
                |i: &domain::Instrument| i.symbol.clone(),
                |page| async move { broker.instruments(&page).await },
            )
            .await?;
        let look = ctx.look_ahead();
        if look.field("nodes").field("quote").exists()
            || look.field("edges").field("node").field("quote").exists()
        {
            let symbols = slice.edges.iter().map(|(_, i)| i.symbol.clone());
            prefetch_quotes(ctx, symbols).await?;
        }
        Ok(slice.into())
    }

    async fn positions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> GqlResult<PositionConnection> {
        let broker = broker(ctx)?;
        let args = ConnectionArgs {
            first,
            after,
            last,
            before,
        };
        let slice = ctx
            .data::<Pager>()?
            .resolve(
                "positions",
                args,
                |p: &domain::Position| p.symbol.clone(),
                |page| async move { broker.positions(&page).await },
            )
            .await?;
        Ok(slice.into())
    }

    /// `null` when the broker has no such order.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Order>> {
        let local = decode_as(&id, NodeKind::Order)?;
        Ok(found(broker(ctx)?.order(&local).await)?.map(Order))
    }

    /// Newest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<OrderFilter>,
    ) -> GqlResult<OrderConnection> {
        let broker = broker(ctx)?;
        let filter = filter.unwrap_or(OrderFilter {
            status: Some(OrderStatusFilter::All),
            symbol: None,
        });
        let query = OrderQuery {
            status: filter.status.unwrap_or(OrderStatusFilter::All).into(),
            symbol: filter.symbol,
        };
        let scope = format!(
            "orders:{:?}:{}",
            query.status,
            query.symbol.as_deref().unwrap_or("")
        );
        let args = ConnectionArgs {
            first,
            after,
            last,
            before,
        };
        let query = &query;
        let slice = ctx
            .data::<Pager>()?
            .resolve(
                &scope,
                args,
                |o: &domain::Order| o.id.clone(),
                |page| async move { broker.orders(query, &page).await },
            )
            .await?;
        Ok(slice.into())
    }

    /// The latest quote; `null` when the broker does not know the symbol. Read
    /// over REST and cached `cache.quote_ttl_ms`, or the live value while some
    /// `quotes` subscription streams the symbol.
    async fn quote(&self, ctx: &Context<'_>, symbol: String) -> GqlResult<Option<Quote>> {
        load_quote(ctx, &symbol).await
    }
}

async fn find_position(
    broker: &dyn Broker,
    symbol: &str,
) -> Result<Option<domain::Position>, GatewayError> {
    let mut cursor = None;
    for _ in 0..MAX_POSITION_PAGES {
        let page = broker
            .positions(&PageRequest {
                cursor,
                limit: MAX_BROKER_PAGE,
            })
            .await?;
        if let Some(p) = page.items.into_iter().find(|p| p.symbol == symbol) {
            return Ok(Some(p));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(None)
}
