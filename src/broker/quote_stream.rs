//! The broker's push channel of quotes. Unlike order events, what it carries is
//! chosen while it runs: the hub above subscribes the union of its subscribers'
//! symbols and changes it as they come and go, within the broker's symbol limit.

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::stream::StreamError;
use crate::domain::Quote;

/// Opens the quote stream of one broker credential. Implementations:
/// `generic::GenericStream` (quotes on the same `/v1/stream` connection as order
/// events, since the broker allows one per key) and `alpaca::AlpacaDataStream`
/// (Alpaca's market-data stream, a connection of its own).
#[async_trait]
pub trait QuoteStream: Send + Sync + 'static {
    /// Connects and authenticates, subscribed to nothing yet.
    async fn open(&self) -> Result<QuoteSession, StreamError>;
    /// The most symbols the broker streams to one credential at once: beyond it
    /// the broker refuses the subscription, so the hub refuses first.
    fn symbol_limit(&self) -> usize;
    /// Whether an open session proves its quotes current: a broker connection that
    /// is up sends every change, so a quote it has not replaced is still the
    /// market. A relay of another process's connection cannot tell when that
    /// connection went away, so its quotes are current only while recent.
    fn proves_current(&self) -> bool {
        true
    }
}

/// One connected quote stream. It ends (`None`, or an `Err`) when the connection
/// does; dropping it leaves the connection (closing it when nothing else uses it).
pub struct QuoteSession {
    pub symbols: Box<dyn QuoteSymbols>,
    pub quotes: BoxStream<'static, Result<Quote, StreamError>>,
}

/// Changes what a session streams. Each call returns once the broker confirmed it,
/// or with the broker's refusal (`StreamError::Refused`, e.g. a symbol limit).
#[async_trait]
pub trait QuoteSymbols: Send + Sync {
    async fn subscribe(&self, symbols: &[String]) -> Result<(), StreamError>;
    async fn unsubscribe(&self, symbols: &[String]) -> Result<(), StreamError>;
}
