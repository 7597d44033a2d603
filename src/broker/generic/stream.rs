//! `GET /v1/stream`: the generic dialect's order events, numbered per account
//! without gaps, so the hub can tell a lost message from a quiet account and
//! resume with `since` after a reconnect.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::AUTHORIZATION;
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::wire::OrderDto;
use crate::broker::stream::{self, OrderStream, StreamError, StreamItem, StreamSession};
use crate::broker::transport::{self, Socket};
use crate::broker::BrokerError;
use crate::domain::OrderEvent;
use crate::secret::Secret;

/// How to open the stream of the account a `GenericBroker` reads.
pub struct GenericStream {
    pub(super) url: Url,
    pub(super) auth: super::Auth,
    pub(super) connect_timeout: std::time::Duration,
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
    Error {
        code: String,
        message: String,
    },
    /// An order event that did not read; its number when that did.
    Unreadable {
        seq: Option<u64>,
    },
    /// Quotes, and whatever a newer broker adds: not order events.
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

fn parse(data: &[u8], api_key: &Secret) -> Result<Option<MessageDto>, StreamError> {
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
        "error" => {
            let dto: ErrorDto = serde_json::from_slice(data).map_err(decode)?;
            MessageDto::Error {
                code: dto.code,
                message: dto.message,
            }
        }
        _ => MessageDto::Other,
    };
    Ok(Some(message))
}

#[async_trait]
impl OrderStream for GenericStream {
    #[tracing::instrument(skip_all, fields(route = "stream", since))]
    async fn open(&self, since: Option<u64>) -> Result<StreamSession, StreamError> {
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
        let mut socket = connected?;
        let mut subscribe = json!({ "action": "subscribe", "orders": true });
        if let Some(since) = since {
            subscribe["since"] = since.into();
        }
        socket.send_json(&subscribe).await?;
        let seq = loop {
            let Some(data) = socket.next_data().await? else {
                return Err(StreamError::Closed("closed before subscribing".into()));
            };
            match parse(&data, &secret)? {
                Some(MessageDto::Subscribed { seq }) => break seq,
                Some(MessageDto::Error { code, message }) if code == "unauthorized" => {
                    tracing::warn!(%message, "the broker refused the stream's credentials");
                    return Err(StreamError::Unauthorized);
                }
                Some(MessageDto::Error { code, message }) => {
                    return Err(StreamError::Refused { code, message })
                }
                _ => {}
            }
        };
        let items = socket.into_items(move |data| match parse(data, &secret)? {
            Some(MessageDto::Order(event)) => Ok(Some(event.into_item())),
            Some(MessageDto::Unreadable { seq }) => Ok(Some(StreamItem::Unreadable { seq })),
            Some(MessageDto::Error { code, .. }) if code == "replay_unavailable" => {
                Ok(Some(StreamItem::ReplayUnavailable))
            }
            Some(MessageDto::Error { code, message }) if code == "connection_limit_exceeded" => {
                Err(StreamError::Refused { code, message })
            }
            Some(MessageDto::Error { code, message }) => {
                tracing::warn!(%code, %message, "the broker stream reported an error");
                Ok(None)
            }
            _ => Ok(None),
        });
        Ok(StreamSession { seq, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderEventKind;

    fn read(text: &str) -> Result<Option<MessageDto>, StreamError> {
        parse(text.as_bytes(), &Secret::new("k"))
    }

    #[test]
    fn an_order_event_that_does_not_read_is_a_numbered_gap_not_the_end() {
        let bad = r#"{"type":"order","seq":7,"event":"fill","order":{"id":"x"}}"#;
        assert!(matches!(
            read(bad),
            Ok(Some(MessageDto::Unreadable { seq: Some(7) }))
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
            Ok(Some(MessageDto::Other))
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
        let Ok(Some(MessageDto::Order(dto))) = read(event) else {
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
