//! The broker's push channel of order events, beside the request/response
//! `Broker`: brokers allow one stream connection per credential, so the gateway
//! opens it once (the hub above) and fans it out, instead of every subscriber
//! polling REST.

use async_trait::async_trait;
use futures::stream::BoxStream;

use rust_decimal::Decimal;

use crate::domain::{Fill, OrderEvent, OrderEventKind};

/// Opens the order-event stream of one broker account. Implementations:
/// `generic::GenericStream` (`GET /v1/stream`, numbered, replayable) and
/// `alpaca::AlpacaStream` (Alpaca's `trade_updates`, neither).
#[async_trait]
pub trait OrderStream: Send + Sync + 'static {
    /// Connects, authenticates and subscribes to order events. `since` is the last
    /// broker sequence number seen, for a broker that replays what followed it;
    /// others ignore it. Returns once the broker confirmed the subscription, so a
    /// caller that reads the broker over REST after this misses nothing.
    async fn open(&self, since: Option<u64>) -> Result<StreamSession, StreamError>;
}

/// One subscribed upstream connection. It ends (`None`, or an `Err`) when the
/// connection does; the caller reconnects.
pub struct StreamSession {
    /// The broker's newest sequence number when it confirmed the subscription,
    /// for a broker that numbers its events.
    pub seq: Option<u64>,
    pub items: BoxStream<'static, Result<StreamItem, StreamError>>,
}

#[derive(Debug)]
pub enum StreamItem {
    /// `seq` is the broker's per-account number, gapless, where it has one.
    Order {
        seq: Option<u64>,
        event: Box<OrderEvent>,
    },
    /// The broker could not replay from `since`: what happened meanwhile must be
    /// read over REST.
    ReplayUnavailable,
    /// An order event we could not read (logged, redacted, by the adapter). Not
    /// the end of the stream: a broker replaying it after every reconnect would
    /// otherwise stop the stream for good. `seq` is its number, when readable.
    Unreadable { seq: Option<u64> },
}

/// Why a stream could not be opened or stopped. Never shown to a subscriber: the
/// hub reconnects, reconciles and tells them with `RECONCILED`/`resync` instead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    #[error("could not connect the broker stream: {0}")]
    Connect(String),
    #[error("the broker refused the stream's credentials")]
    Unauthorized,
    /// The broker said no with a reason (`connection_limit_exceeded`: another
    /// process holds this credential's one stream).
    #[error("the broker refused the stream: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("the broker stream closed: {0}")]
    Closed(String),
    /// A message we could not read; logged redacted by the adapter.
    #[error("unreadable message on the broker stream: {0}")]
    Protocol(String),
}

/// An event's kind from its broker name: the generic dialect took Alpaca's names,
/// so one table serves both; a name without its own kind is `Other`.
pub(crate) fn event_kind(name: &str) -> OrderEventKind {
    match name {
        "new" => OrderEventKind::New,
        "accepted" => OrderEventKind::Accepted,
        "partial_fill" => OrderEventKind::PartialFill,
        "fill" => OrderEventKind::Fill,
        "canceled" => OrderEventKind::Canceled,
        "pending_cancel" => OrderEventKind::PendingCancel,
        "expired" => OrderEventKind::Expired,
        "rejected" => OrderEventKind::Rejected,
        "replaced" => OrderEventKind::Replaced,
        _ => OrderEventKind::Other,
    }
}

/// The execution an event reports, when it carries all three parts.
pub(crate) fn fill(
    execution_id: Option<String>,
    price: Option<Decimal>,
    quantity: Option<Decimal>,
) -> Option<Fill> {
    Some(Fill {
        execution_id: execution_id?,
        price: price?,
        quantity: quantity?,
    })
}
