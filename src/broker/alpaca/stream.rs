//! Alpaca's trade updates (`wss://…/stream`): authenticate, listen to
//! `trade_updates`, then JSON in binary frames. Unlike the generic dialect the
//! events carry no sequence number and nothing is replayed, so a gap can only be
//! closed by reading the orders over REST (the hub does).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Url;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::wire::OrderDto;
use crate::broker::stream::{self, OrderStream, StreamError, StreamItem, StreamSession};
use crate::broker::transport::{self, Socket};
use crate::domain::OrderEvent;
use crate::secret::Secret;

/// How to open the trade-updates stream of the account an `AlpacaBroker` reads.
pub struct AlpacaStream {
    pub(super) url: Url,
    pub(super) key_id: Secret,
    pub(super) secret: Secret,
    pub(super) connect_timeout: std::time::Duration,
}

/// A trading-stream message (`stream` and `data`), or a refusal in the shape of
/// Alpaca's market-data errors (`{"T":"error","code":406,"msg":"connection limit exceeded"}`).
#[derive(Deserialize)]
struct MessageDto {
    #[serde(default)]
    stream: String,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default, rename = "T")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    msg: Option<String>,
}

impl MessageDto {
    fn refusal(&self) -> Option<StreamError> {
        (self.kind.as_deref() == Some("error")).then(|| StreamError::Refused {
            code: self
                .code
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            message: self.msg.clone().unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
struct AuthorizationDto {
    status: String,
}

#[derive(Deserialize)]
struct TradeUpdateDto {
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
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
}

impl TradeUpdateDto {
    fn into_event(self) -> OrderEvent {
        let fill = stream::fill(self.execution_id, self.price, self.qty);
        let now = Utc::now();
        OrderEvent {
            kind: stream::event_kind(&self.event),
            broker_event: self.event,
            order: self.order.into_domain(now),
            fill,
            position_quantity: self.position_qty,
            at: self.timestamp.unwrap_or(now),
        }
    }
}

fn parse(data: &[u8], secret: &Secret) -> Result<MessageDto, StreamError> {
    serde_json::from_slice(data)
        .map_err(|e| StreamError::Protocol(transport::decode_error(&e, data, secret).to_string()))
}

#[async_trait]
impl OrderStream for AlpacaStream {
    #[tracing::instrument(skip_all, fields(route = "stream"))]
    async fn open(&self, _since: Option<u64>) -> Result<StreamSession, StreamError> {
        let mut socket =
            Socket::connect(self.url.clone(), Vec::new(), self.connect_timeout).await?;
        socket
            .send_json(&json!({
                "action": "auth",
                "key": self.key_id.expose(),
                "secret": self.secret.expose(),
            }))
            .await?;
        let mut listening = false;
        while !listening {
            let Some(data) = socket.next_data().await? else {
                return Err(StreamError::Closed("closed before listening".into()));
            };
            let message = parse(&data, &self.secret)?;
            if let Some(refused) = message.refusal() {
                return Err(refused);
            }
            match message.stream.as_str() {
                "authorization" => {
                    let auth: AuthorizationDto = serde_json::from_value(message.data)
                        .map_err(|e| StreamError::Protocol(e.to_string()))?;
                    if auth.status != "authorized" {
                        return Err(StreamError::Unauthorized);
                    }
                    socket
                        .send_json(&json!({
                            "action": "listen",
                            "data": { "streams": ["trade_updates"] },
                        }))
                        .await?;
                }
                "listening" => listening = true,
                _ => {}
            }
        }
        let secret = self.secret.clone();
        let items = socket.into_items(move |data| {
            let message = parse(data, &secret)?;
            if let Some(refused) = message.refusal() {
                return Err(refused);
            }
            if message.stream != "trade_updates" {
                return Ok(None);
            }
            match serde_json::from_value::<TradeUpdateDto>(message.data) {
                Ok(update) => Ok(Some(StreamItem::Order {
                    seq: None,
                    event: Box::new(update.into_event()),
                })),
                Err(e) => {
                    transport::decode_error(&e, data, &secret);
                    Ok(Some(StreamItem::Unreadable { seq: None }))
                }
            }
        });
        Ok(StreamSession { seq: None, items })
    }
}
