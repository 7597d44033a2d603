//! The broker layer: one trait in domain types, and the adapters that speak a real
//! broker's REST dialect behind it.
//!
//! Everything above this module (cache, orders, GraphQL) holds an `Arc<dyn Broker>`
//! and never sees broker JSON, URLs or credentials.

pub mod alpaca;
mod close;
mod error;
pub mod generic;
mod layer;
mod quote_stream;
mod rate_limit;
mod route;
pub mod stream;
pub mod transport;

use async_trait::async_trait;

use crate::domain::{
    Account, CanceledOrders, Instrument, NewOrder, Order, OrderQuery, OrderReplacement, Page,
    PageRequest, Position, PositionClose, Quote, Replaced, Submitted,
};

pub(crate) use close::{closing_order, no_position};
pub use error::BrokerError;
pub use layer::{CallLayer, Layered};
pub use quote_stream::{QuoteSession, QuoteStream, QuoteSymbols};
pub use rate_limit::RateLimitSnapshot;
pub use route::Route;
pub use stream::{OrderStream, StreamError, StreamItem, StreamSession};

/// The largest page a v1 broker list returns; asking for more is a 400.
pub const MAX_BROKER_PAGE: u32 = 100;

/// Symbols one quote snapshot may ask for: what both dialects' REST routes take.
pub const MAX_QUOTE_SYMBOLS: usize = 100;

/// A broker account seen through its REST API. Implementations: `generic::GenericBroker`
/// (the generic v1 dialect), `alpaca::AlpacaBroker` (Alpaca's Trading API v2), and
/// wrappers such as the cache that add behaviour without the layers above knowing.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    async fn account(&self) -> Result<Account, BrokerError>;
    /// `Err(BrokerError::NotFound)` when the broker has no such symbol.
    async fn instrument(&self, symbol: &str) -> Result<Instrument, BrokerError>;
    async fn instruments(&self, page: &PageRequest) -> Result<Page<Instrument>, BrokerError>;
    async fn positions(&self, page: &PageRequest) -> Result<Page<Position>, BrokerError>;
    /// `Err(BrokerError::NotFound)` when the broker has no such order.
    async fn order(&self, id: &str) -> Result<Order, BrokerError>;
    /// Newest first.
    async fn orders(
        &self,
        query: &OrderQuery,
        page: &PageRequest,
    ) -> Result<Page<Order>, BrokerError>;
    /// Sends the order with its idempotency key; a broker that has seen the key
    /// returns the original order with `replayed: true`.
    async fn submit_order(&self, order: &NewOrder) -> Result<Submitted, BrokerError>;
    async fn cancel_order(&self, id: &str) -> Result<Order, BrokerError>;
    /// Replaces an open order with a new one under the replacement's idempotency key; a
    /// broker that has seen the key returns the same replacement with `replayed: true`.
    /// `Err(BrokerError::NotFound)` when the broker has no such order.
    async fn replace_order(
        &self,
        id: &str,
        replacement: &OrderReplacement,
    ) -> Result<Replaced, BrokerError>;
    /// Closes a position with an order of the opposite side under the close's key, as
    /// a submit: a key the broker has seen returns the same order, `replayed: true`.
    async fn close_position(&self, close: &PositionClose) -> Result<Submitted, BrokerError>;
    /// Cancels every open order (of `symbol`, when given). Safe to repeat: a second
    /// call finds nothing left to cancel.
    async fn cancel_all_orders(&self, symbol: Option<&str>) -> Result<CanceledOrders, BrokerError>;
    /// The latest quote of each symbol the broker knows among `symbols` (at most
    /// [`MAX_QUOTE_SYMBOLS`]); unknown symbols are left out, not an error.
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>, BrokerError>;
    /// The broker's rate-limit budget as its last response reported it.
    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        None
    }
}
