//! The broker layer: one trait in domain types, and the adapters that speak a real
//! broker's REST dialect behind it.
//!
//! Everything above this module (cache, orders, GraphQL) holds an `Arc<dyn Broker>`
//! and never sees broker JSON, URLs or credentials.

pub mod alpaca;
mod error;
pub mod generic;
mod layer;
mod rate_limit;
mod route;
pub mod stream;
pub mod transport;

use async_trait::async_trait;

use crate::domain::{
    Account, Instrument, NewOrder, Order, OrderQuery, Page, PageRequest, Position, Submitted,
};

pub use error::BrokerError;
pub use layer::{CallLayer, Layered};
pub use rate_limit::RateLimitSnapshot;
pub use route::Route;
pub use stream::{OrderStream, StreamError, StreamItem, StreamSession};

/// The largest page a v1 broker list returns; asking for more is a 400.
pub const MAX_BROKER_PAGE: u32 = 100;

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
    /// The broker's rate-limit budget as its last response reported it.
    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        None
    }
}
