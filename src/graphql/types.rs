//! The GraphQL object types of `schema.graphql`, as thin views over domain types.

use async_graphql::{
    dataloader::DataLoader, ComplexObject, Context, Interface, Object, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::enums::{AccountStatus, OrderSide, OrderStatus, OrderType, TimeInForce};
use super::error::GqlResult;
use super::ids::{encode, NodeKind};
use super::loader::InstrumentLoader;
use super::quote::{load_quote, Quote};
use super::scalars::Decimal;
use crate::domain;
use crate::orders;

/// Any object that `node(id:)` can fetch again by its global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub(super) enum Node {
    Account(Account),
    Instrument(Instrument),
    Position(Position),
    Order(Order),
}

pub(super) struct Account(pub domain::Account);

#[Object]
impl Account {
    async fn id(&self) -> ID {
        encode(NodeKind::Account, &self.0.id)
    }
    async fn account_number(&self) -> &str {
        &self.0.account_number
    }
    async fn status(&self) -> AccountStatus {
        self.0.status.into()
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn cash(&self) -> Decimal {
        self.0.cash.into()
    }
    async fn buying_power(&self) -> Decimal {
        self.0.buying_power.into()
    }
    async fn equity(&self) -> Decimal {
        self.0.equity.into()
    }
    /// When brokergraph last read this account from the broker.
    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
}

#[derive(SimpleObject)]
pub(super) struct TradingHours {
    timezone: String,
    open: String,
    close: String,
}

pub(super) struct Instrument(pub domain::Instrument);

#[Object]
impl Instrument {
    async fn id(&self) -> ID {
        encode(NodeKind::Instrument, &self.0.symbol)
    }
    async fn symbol(&self) -> &str {
        &self.0.symbol
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn tradable(&self) -> bool {
        self.0.tradable
    }
    /// Every price of an order must be a whole multiple of this.
    async fn tick_size(&self) -> Decimal {
        self.0.tick_size.into()
    }
    /// Every quantity of an order must be a whole multiple of this.
    async fn lot_size(&self) -> Decimal {
        self.0.lot_size.into()
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn trading_hours(&self) -> Option<TradingHours> {
        self.0.trading_hours.as_ref().map(|h| TradingHours {
            timezone: h.timezone.clone(),
            open: h.open.clone(),
            close: h.close.clone(),
        })
    }
    /// The latest quote, batched with the rest of the page's into one broker call.
    async fn quote(&self, ctx: &Context<'_>) -> GqlResult<Option<Quote>> {
        load_quote(ctx, &self.0.symbol).await
    }
}

async fn load_instrument(ctx: &Context<'_>, symbol: &str) -> GqlResult<Option<Instrument>> {
    let loader = ctx.data::<DataLoader<InstrumentLoader>>()?;
    let found = loader.load_one(symbol.to_string()).await?;
    Ok(found.map(Instrument))
}

pub(super) struct Position(pub domain::Position);

#[Object]
impl Position {
    async fn id(&self) -> ID {
        encode(NodeKind::Position, &self.0.symbol)
    }
    async fn symbol(&self) -> &str {
        &self.0.symbol
    }
    /// Batched per request and per symbol: a page of positions costs one lookup per
    /// distinct symbol.
    async fn instrument(&self, ctx: &Context<'_>) -> GqlResult<Option<Instrument>> {
        load_instrument(ctx, &self.0.symbol).await
    }
    async fn quantity(&self) -> Decimal {
        self.0.quantity.into()
    }
    async fn average_price(&self) -> Decimal {
        self.0.average_price.into()
    }
    async fn market_value(&self) -> Option<Decimal> {
        self.0.market_value.map(Decimal)
    }
    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
}

pub(super) struct Order(pub domain::Order);

#[Object]
impl Order {
    async fn id(&self) -> ID {
        encode(NodeKind::Order, &self.0.id)
    }
    /// The broker's own id for this order, e.g. to quote to its support desk.
    async fn broker_order_id(&self) -> &str {
        &self.0.id
    }
    async fn idempotency_key(&self) -> Option<Uuid> {
        self.0.idempotency_key
    }
    async fn symbol(&self) -> &str {
        &self.0.symbol
    }
    async fn instrument(&self, ctx: &Context<'_>) -> GqlResult<Option<Instrument>> {
        load_instrument(ctx, &self.0.symbol).await
    }
    async fn side(&self) -> OrderSide {
        self.0.side.into()
    }
    #[graphql(name = "type")]
    async fn order_type(&self) -> OrderType {
        self.0.order_type.into()
    }
    async fn quantity(&self) -> Decimal {
        self.0.quantity.into()
    }
    async fn filled_quantity(&self) -> Decimal {
        self.0.filled_quantity.into()
    }
    async fn limit_price(&self) -> Option<Decimal> {
        self.0.limit_price.map(Decimal)
    }
    async fn stop_price(&self) -> Option<Decimal> {
        self.0.stop_price.map(Decimal)
    }
    async fn average_fill_price(&self) -> Option<Decimal> {
        self.0.average_fill_price.map(Decimal)
    }
    async fn time_in_force(&self) -> TimeInForce {
        self.0.time_in_force.into()
    }
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    /// The status word exactly as the broker reported it (e.g. Alpaca's
    /// `done_for_day` or `held`), for when `status` folds several broker states into one.
    async fn broker_status(&self) -> Option<String> {
        self.0.broker_status.clone().or_else(|| {
            serde_json::to_value(self.0.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
}

#[derive(SimpleObject)]
pub(super) struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident) => {
        #[derive(SimpleObject)]
        pub(crate) struct $edge {
            pub(crate) cursor: String,
            pub(crate) node: $node,
        }

        #[derive(SimpleObject)]
        #[graphql(complex)]
        pub(crate) struct $conn {
            pub(crate) edges: Vec<$edge>,
            pub(crate) page_info: PageInfo,
        }

        #[ComplexObject]
        impl $conn {
            /// The nodes of `edges`, for clients that do not need cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
        }

        impl From<super::connection::Slice<domain::$node>> for $conn {
            fn from(slice: super::connection::Slice<domain::$node>) -> Self {
                let page_info = PageInfo {
                    has_next_page: slice.has_next_page,
                    has_previous_page: slice.has_previous_page,
                    start_cursor: slice.edges.first().map(|(c, _)| c.clone()),
                    end_cursor: slice.edges.last().map(|(c, _)| c.clone()),
                };
                let edges = slice
                    .edges
                    .into_iter()
                    .map(|(cursor, node)| $edge {
                        cursor,
                        node: $node(node),
                    })
                    .collect();
                $conn { edges, page_info }
            }
        }
    };
}

connection!(InstrumentConnection, InstrumentEdge, Instrument);
connection!(PositionConnection, PositionEdge, Position);
connection!(OrderConnection, OrderEdge, Order);

/// A business outcome of a mutation, next to the input field it is about
/// (docs/api.md, "Errors"); `code` is the `orders::UserErrorCode`'s text.
#[derive(SimpleObject)]
pub(super) struct UserError {
    field: Option<Vec<String>>,
    message: String,
    code: String,
}

impl From<orders::UserError> for UserError {
    fn from(e: orders::UserError) -> Self {
        UserError {
            field: (!e.field.is_empty()).then_some(e.field),
            message: e.message,
            code: e.code.to_string(),
        }
    }
}
