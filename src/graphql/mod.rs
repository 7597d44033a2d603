//! The GraphQL API (docs/api.md): schema, Relay connections over broker cursors,
//! DataLoaders, and the mapping of every error to `extensions.code`.

mod apq;
mod audited;
#[doc(hidden)]
pub mod bench_support;
mod code;
mod connection;
mod cursor;
mod documents;
mod enums;
pub mod error;
mod execute;
mod harden;
mod ids;
pub(crate) mod limits;
mod loader;
mod mutation;
mod observe;
mod partial;
pub mod persisted;
#[doc(hidden)]
pub mod probe;
mod query;
mod quote;
mod responses;
mod scalars;
mod subscription;
mod trading;
mod types;

use std::sync::Arc;

use async_graphql::Schema;

use crate::broker::Broker;
pub use apq::SharedApq;
pub(crate) use code::ErrorCode;
use connection::Pager;
use cursor::CursorCodec;
pub use documents::DocumentCache;
pub use execute::{unknown_account, Answer, Answered, Executor};
pub use harden::Hardening;
pub use loader::InstrumentLoader;
use mutation::MutationRoot;
pub use observe::Observed;
use query::QueryRoot;
pub use quote::Quotes;
use subscription::{FeedCursors, SubscriptionRoot};

use crate::orders::OrderService;
use crate::streams::OrderFeed;

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Page sizes of connections (`graphql.*` settings): what `first`/`last` default to,
/// and the most a client may ask for in one connection.
#[derive(Clone, Copy, Debug)]
pub struct PageSizes {
    pub default: u32,
    pub max: u32,
}

/// Builds the executable schema over one broker. `cursor_secret` signs cursors; it
/// should be the same for every replica in front of the same broker account.
pub(crate) fn build_schema(
    broker: Arc<dyn Broker>,
    orders: Arc<OrderService>,
    feed: OrderFeed,
    quotes: Quotes,
    pages: PageSizes,
    cursor_secret: &[u8],
    hardening: &Hardening,
) -> AppSchema {
    harden::apply(
        Schema::build(QueryRoot, MutationRoot, SubscriptionRoot),
        hardening,
    )
    .data(broker)
    .data(orders)
    .data(feed)
    .data(quotes)
    .data(Arc::new(FeedCursors(CursorCodec::new(cursor_secret))))
    .data(Pager::new(
        CursorCodec::new(cursor_secret),
        pages.default,
        pages.max,
    ))
    .finish()
}

/// The SDL, as `brokergraph schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}
