//! `GET /v1/stream`: the generic dialect's order events, numbered per account
//! without gaps, so the hub can tell a lost message from a quiet account and
//! resume with `since` after a reconnect; and its quotes, on the same connection
//! (the broker allows one per key), shared through a `transport::Link`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::header::AUTHORIZATION;
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::wire::{OrderDto, QuoteDto};
use crate::broker::quote_stream::{QuoteSession, QuoteStream};
use crate::broker::stream::{self, OrderStream, StreamError, StreamItem, StreamSession};
use crate::broker::transport::link::{Inbound, Link, Protocol, Side};
use crate::broker::transport::{self, Socket};
use crate::broker::BrokerError;
use crate::domain::OrderEvent;
use crate::secret::Secret;

/// How to open the stream of the account a `GenericBroker` reads, and the one
/// connection its order feed and quote hub share.
pub struct GenericStream {
    pub(super) url: Url,
    pub(super) auth: super::Auth,
    pub(super) connect_timeout: std::time::Duration,
    pub(super) symbol_limit: usize,
    pub(super) link: tokio::sync::Mutex<Option<Link>>,
}

/// What every message has. Read first, then the whole message as its type:
/// serde's internally tagged enums buffer the fields, and the buffered `null` of
/// an optional decimal string then fails to read.
#[derive(Deserialize)]
struct TagDto {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct SubscribedDto {
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorDto {
    code: String,
    #[serde(default)]
    message: String,
}

enum MessageDto {
    Subscribed {
        seq: Option<u64>,
    },
    Order(Box<OrderEventDto>),
    Quote(QuoteDto),
    Error {
        code: String,
        message: String,
    },
    /// An order event that did not read; its number when that did.
    Unreadable {
        seq: Option<u64>,
    },
    /// Whatever a newer broker adds, and quotes that did not read (logged).
    Other,
}

#[derive(Deserialize)]
struct OrderEventDto {
    seq: u64,
    event: String,
    order: OrderDto,
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    price: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    qty: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    position_qty: Option<Decimal>,
    timestamp: DateTime<Utc>,
}

impl OrderEventDto {
    fn into_item(self) -> StreamItem {
        let fill = stream::fill(self.execution_id, self.price, self.qty);
        StreamItem::Order {
            seq: Some(self.seq),
            event: Box::new(OrderEvent {
                kind: stream::event_kind(&self.event),
                broker_event: self.event,
                order: self.order.into_domain(Utc::now()),
                fill,
                position_quantity: self.position_qty,
                at: self.timestamp,
            }),
        }
    }
}

fn parse(data: &[u8], api_key: &Secret) -> Result<MessageDto, StreamError> {
    let decode = |e: serde_json::Error| {
        StreamError::Protocol(transport::decode_error(&e, data, api_key).to_string())
    };
    let tag: TagDto = serde_json::from_slice(data).map_err(decode)?;
    let message = match tag.kind.as_str() {
        "subscribed" => {
            let dto: SubscribedDto = serde_json::from_slice(data).map_err(decode)?;
            MessageDto::Subscribed { seq: dto.seq }
        }
        "order" => match serde_json::from_slice::<OrderEventDto>(data) {
            Ok(dto) => MessageDto::Order(Box::new(dto)),
            Err(e) => {
                decode(e);
                MessageDto::Unreadable { seq: tag.seq }
            }
        },
        "quote" => match serde_json::from_slice::<QuoteDto>(data) {
            Ok(dto) => MessageDto::Quote(dto),
            Err(e) => {
                decode(e);
                MessageDto::Other
            }
        },
        "error" => {
            let dto: ErrorDto = serde_json::from_slice(data).map_err(decode)?;
            MessageDto::Error {
                code: dto.code,
                message: dto.message,
            }
        }
        _ => MessageDto::Other,
    };
    Ok(message)
}

/// The v1 stream's messages as the link reads them: `subscribed` and refusals
/// answer requests; `replay_unavailable` belongs to the order events it precedes.
struct V1 {
    api_key: Secret,
}

impl Protocol for V1 {
    fn read(&mut self, data: &[u8]) -> Result<Vec<Inbound>, StreamError> {
        let inbound = match parse(data, &self.api_key)? {
            MessageDto::Subscribed { seq } => Inbound::Answer(Ok(seq)),
            MessageDto::Order(event) => Inbound::Order(event.into_item()),
            MessageDto::Unreadable { seq } => Inbound::Order(StreamItem::Unreadable { seq }),
            MessageDto::Quote(quote) => Inbound::Quote(quote.into_domain(Utc::now())),
            MessageDto::Error { code, .. } if code == "replay_unavailable" => {
                Inbound::Order(StreamItem::ReplayUnavailable)
            }
            MessageDto::Error { code, message } if code == "unauthorized" => {
                tracing::warn!(%message, "the broker refused the stream's credentials");
                Inbound::Fatal(StreamError::Unauthorized)
            }
            MessageDto::Error { code, message } if code == "connection_limit_exceeded" => {
                Inbound::Fatal(StreamError::Refused { code, message })
            }
            MessageDto::Error { code, message } => {
                Inbound::Answer(Err(StreamError::Refused { code, message }))
            }
            MessageDto::Other => return Ok(Vec::new()),
        };
        Ok(vec![inbound])
    }

    fn leave(&self, side: Side) -> Option<Value> {
        match side {
            Side::Orders => Some(json!({ "action": "unsubscribe", "orders": true })),
            // The hub unsubscribes its symbols as they go unwatched: by the time it
            // leaves, nothing is left to stop.
            Side::Quotes => None,
        }
    }
}

impl GenericStream {
    /// The open connection, or a new one.
    async fn link(&self) -> Result<Link, StreamError> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|link| !link.is_closed()) {
            return Ok(link.clone());
        }
        let (secret, source) = match &self.auth {
            super::Auth::ApiKey(key) => (key.clone(), None),
            super::Auth::Bearer(source) => {
                let token = source.bearer().await.map_err(|e| match e {
                    BrokerError::ReauthRequired => StreamError::Unauthorized,
                    other => StreamError::Connect(other.to_string()),
                })?;
                (token, Some(source))
            }
        };
        let bearer = transport::bearer_header(&secret).ok_or(StreamError::Unauthorized)?;
        let connected = Socket::connect(
            self.url.clone(),
            vec![(AUTHORIZATION, bearer)],
            self.connect_timeout,
        )
        .await;
        if let (Err(StreamError::Unauthorized), Some(source)) = (&connected, source) {
            // The next reconnect asks for a fresh token.
            source.invalidate(&secret);
        }
        let link = Link::start(connected?, V1 { api_key: secret });
        *slot = Some(link.clone());
        Ok(link)
    }
}

#[async_trait]
impl OrderStream for GenericStream {
    #[tracing::instrument(skip_all, fields(route = "stream", since))]
    async fn open(&self, since: Option<u64>) -> Result<StreamSession, StreamError> {
        let link = self.link().await?;
        let items = link.orders()?;
        let mut subscribe = json!({ "action": "subscribe", "orders": true });
        if let Some(since) = since {
            subscribe["since"] = since.into();
        }
        let seq = link.request(subscribe).await?;
        Ok(StreamSession {
            seq,
            items: items.boxed(),
        })
    }
}

#[async_trait]
impl QuoteStream for GenericStream {
    #[tracing::instrument(skip_all, fields(route = "stream"))]
    async fn open(&self) -> Result<QuoteSession, StreamError> {
        self.link().await?.quote_session()
    }

    fn symbol_limit(&self) -> usize {
        self.symbol_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderEventKind;

    fn read(text: &str) -> Result<MessageDto, StreamError> {
        parse(text.as_bytes(), &Secret::new("k"))
    }

    #[test]
    fn an_order_event_that_does_not_read_is_a_numbered_gap_not_the_end() {
        let bad = r#"{"type":"order","seq":7,"event":"fill","order":{"id":"x"}}"#;
        assert!(matches!(
            read(bad),
            Ok(MessageDto::Unreadable { seq: Some(7) })
        ));
    }

    #[test]
    fn junk_is_a_protocol_error_and_unknown_types_are_ignored() {
        assert!(matches!(read("not json"), Err(StreamError::Protocol(_))));
        assert!(matches!(
            read(r#"{"seq":1}"#),
            Err(StreamError::Protocol(_))
        ));
        assert!(matches!(
            read(r#"{"type":"quote","symbol":"ABC"}"#),
            Ok(MessageDto::Other)
        ));
    }

    #[test]
    fn an_order_event_with_null_prices_reads() {
        let event = r#"{"type":"order","seq":1,"event":"new","order":{"id":"o1",
            "symbol":"AA","side":"buy","type":"market","quantity":"1","filled_quantity":"0",
            "limit_price":null,"stop_price":null,"average_fill_price":null,
            "time_in_force":"day","status":"accepted","created_at":"2026-12-01T04:53:30.202Z",
            "updated_at":"2026-12-01T04:53:30.202Z"},"position_qty":"0",
            "timestamp":"2026-12-01T04:53:30.202Z"}"#;
        let Ok(MessageDto::Order(dto)) = read(event) else {
            panic!("an order event");
        };
        let StreamItem::Order { seq, event } = dto.into_item() else {
            panic!("an order item");
        };
        assert_eq!(seq, Some(1));
        assert_eq!(event.kind, OrderEventKind::New);
        assert_eq!(event.fill, None);
    }
}
