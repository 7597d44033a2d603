//! `Subscription`: live order events of the caller's broker account, from the
//! account's `streams::OrderFeed`, and live quotes, from its `streams::QuoteHub`.

use std::sync::Arc;

use async_graphql::{Context, Object, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use super::cursor::CursorCodec;
use super::enums::OrderEvent;
use super::error::GatewayError;
use super::quote::{Quote, Quotes};
use super::scalars::Decimal;
use super::types::Order;
use crate::auth::Principal;
use crate::config::Scope;
use crate::domain;
use crate::streams::{Delivery, OrderFeed, Position};

/// Binds `orderUpdates` cursors to this feed: a connection cursor pasted into
/// `after` is refused like a forged one.
const CURSOR_SCOPE: &str = "orderUpdates";

pub struct SubscriptionRoot;

/// What the subscription resolvers need besides the feed: the cursor codec, shared
/// with connections (one key per broker account).
pub(super) struct FeedCursors(pub CursorCodec);

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every change to the account's orders, in the broker's order. Before an
    /// event arrives, the gateway's caches have forgotten what it made stale, so a
    /// query sent after it answers the new state. `after`: the `cursor` of the
    /// last event received, to resume after a reconnect; events that can no longer
    /// be replayed are announced with `resync: true` on the next one.
    async fn order_updates(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = OrderUpdate>, GatewayError> {
        match ctx.data_opt::<Principal>() {
            Some(p) if p.has(Scope::Read) => {}
            _ => return Err(GatewayError::Forbidden("read")),
        }
        let feed = ctx.data_unchecked::<OrderFeed>();
        let cursors = ctx.data_unchecked::<Arc<FeedCursors>>().clone();
        let after = match after {
            Some(cursor) => Some(cursors.0.decode::<Position>(CURSOR_SCOPE, &cursor)?),
            None => None,
        };
        Ok(feed.subscribe(after).map(move |delivery| OrderUpdate {
            delivery,
            cursors: cursors.clone(),
        }))
    }

    /// The quotes of `symbols` as they change, starting with the current one of
    /// each symbol already streamed. A subscriber that reads slowly gets the latest
    /// quote per symbol, not every one it missed. Refused before anything is
    /// subscribed: no symbols or unknown ones (`BAD_USER_INPUT`), more than
    /// `subscriptions.max_symbols`, or more than the broker streams at once for the
    /// account across all subscribers (`QUERY_TOO_COMPLEX`, naming the limit).
    async fn quotes(
        &self,
        ctx: &Context<'_>,
        symbols: Vec<String>,
    ) -> Result<impl Stream<Item = Result<Quote, GatewayError>>, GatewayError> {
        match ctx.data_opt::<Principal>() {
            Some(p) if p.has(Scope::Read) => {}
            _ => return Err(GatewayError::Forbidden("read")),
        }
        ctx.data_unchecked::<Quotes>().watch(ctx, symbols).await
    }
}

pub(super) struct OrderUpdate {
    delivery: Delivery,
    cursors: Arc<FeedCursors>,
}

impl OrderUpdate {
    fn domain(&self) -> &domain::OrderEvent {
        &self.delivery.entry.event
    }
}

#[Object]
impl OrderUpdate {
    /// Pass as `orderUpdates(after:)` to resume after this event.
    async fn cursor(&self) -> String {
        self.cursors
            .0
            .encode(CURSOR_SCOPE, &self.delivery.entry.position)
    }
    async fn event(&self) -> OrderEvent {
        self.domain().kind.into()
    }
    /// The broker's own name for the event, for what `event` folds into `OTHER`.
    async fn broker_event(&self) -> &str {
        &self.domain().broker_event
    }
    /// The whole order as it is after this event.
    async fn order(&self) -> Order {
        Order(self.domain().order.clone())
    }
    /// Set for `PARTIAL_FILL` and `FILL`.
    async fn fill(&self) -> Option<Fill> {
        self.domain().fill.clone().map(Fill)
    }
    /// The account's position in the order's symbol after this event, when the
    /// broker says.
    async fn position_quantity(&self) -> Option<Decimal> {
        self.domain().position_quantity.map(Decimal)
    }
    async fn at(&self) -> DateTime<Utc> {
        self.domain().at
    }
    /// Events may be missing before this one: read `orders` and `positions` again.
    async fn resync(&self) -> bool {
        self.delivery.resync || self.delivery.entry.resync
    }
}

pub(super) struct Fill(domain::Fill);

#[Object]
impl Fill {
    async fn execution_id(&self) -> &str {
        &self.0.execution_id
    }
    async fn price(&self) -> Decimal {
        Decimal(self.0.price)
    }
    async fn quantity(&self) -> Decimal {
        Decimal(self.0.quantity)
    }
}
