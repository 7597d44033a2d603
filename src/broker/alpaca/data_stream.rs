//! Alpaca's real-time market data (`wss://stream.data.alpaca.markets/v2/iex`):
//! a connection of its own (one per key; a second is refused with 406), an `auth`
//! message, then frames that are JSON arrays of messages. Quotes are `"T":"q"`;
//! every subscribe or unsubscribe is answered by the whole `subscription`, or by
//! an error (405: beyond the plan's symbol limit).

use async_trait::async_trait;
use chrono::Utc;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};

use super::market_data::QuoteDto;
use crate::broker::quote_stream::{QuoteSession, QuoteStream};
use crate::broker::stream::StreamError;
use crate::broker::transport::link::{Inbound, Link, Protocol, Side};
use crate::broker::transport::{self, Socket};
use crate::secret::Secret;

/// How to open the account's market-data stream.
pub struct AlpacaDataStream {
    /// The feed's URL, e.g. `wss://stream.data.alpaca.markets/v2/iex`.
    pub(super) url: Url,
    pub(super) key_id: Secret,
    pub(super) secret: Secret,
    pub(super) connect_timeout: std::time::Duration,
    pub(super) symbol_limit: usize,
}

#[derive(Deserialize)]
struct MessageDto {
    #[serde(rename = "T")]
    kind: String,
    #[serde(default, rename = "S")]
    symbol: Option<String>,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    msg: Option<String>,
}

impl MessageDto {
    fn refusal(&self) -> StreamError {
        let code = self.code.map(|c| c.to_string()).unwrap_or_default();
        let message = self.msg.clone().unwrap_or_default();
        match self.code {
            Some(401 | 402) => StreamError::Unauthorized,
            _ => StreamError::Refused { code, message },
        }
    }
}

/// A frame's messages, each kept as JSON until its type says how to read it.
fn frame(data: &[u8], secret: &Secret) -> Result<Vec<(MessageDto, Value)>, StreamError> {
    let decode = |e: serde_json::Error| {
        StreamError::Protocol(transport::decode_error(&e, data, secret).to_string())
    };
    let values: Vec<Value> = serde_json::from_slice(data).map_err(decode)?;
    values
        .into_iter()
        .map(|v| Ok((MessageDto::deserialize(&v).map_err(decode)?, v)))
        .collect()
}

struct DataProtocol {
    secret: Secret,
}

impl Protocol for DataProtocol {
    fn read(&mut self, data: &[u8]) -> Result<Vec<Inbound>, StreamError> {
        let mut inbound = Vec::new();
        for (message, value) in frame(data, &self.secret)? {
            match message.kind.as_str() {
                "q" => match (message.symbol, QuoteDto::deserialize(&value)) {
                    (Some(symbol), Ok(dto)) => {
                        inbound.push(Inbound::Quote(dto.into_domain(symbol, Utc::now())))
                    }
                    (_, Err(e)) => {
                        transport::decode_error(&e, data, &self.secret);
                    }
                    (None, _) => {}
                },
                "subscription" => inbound.push(Inbound::Answer(Ok(None))),
                // 406: another connection took this key's one slot.
                "error" if matches!(message.code, Some(401 | 402 | 406)) => {
                    inbound.push(Inbound::Fatal(message.refusal()))
                }
                "error" => inbound.push(Inbound::Answer(Err(message.refusal()))),
                _ => {}
            }
        }
        Ok(inbound)
    }

    fn leave(&self, _: Side) -> Option<Value> {
        None
    }
}

impl AlpacaDataStream {
    /// Connects and authenticates: `connected`, then `auth`, then `authenticated`.
    async fn connect(&self) -> Result<Socket, StreamError> {
        let mut socket =
            Socket::connect(self.url.clone(), Vec::new(), self.connect_timeout).await?;
        let mut authenticating = false;
        loop {
            let Some(data) = socket.next_data().await? else {
                return Err(StreamError::Closed("closed before authenticating".into()));
            };
            for (message, _) in frame(&data, &self.secret)? {
                match (message.kind.as_str(), message.msg.as_deref()) {
                    ("error", _) => return Err(message.refusal()),
                    ("success", Some("connected")) if !authenticating => {
                        socket
                            .send_json(&json!({
                                "action": "auth",
                                "key": self.key_id.expose(),
                                "secret": self.secret.expose(),
                            }))
                            .await?;
                        authenticating = true;
                    }
                    ("success", Some("authenticated")) => return Ok(socket),
                    _ => {}
                }
            }
        }
    }
}

#[async_trait]
impl QuoteStream for AlpacaDataStream {
    #[tracing::instrument(skip_all, fields(route = "data_stream"))]
    async fn open(&self) -> Result<QuoteSession, StreamError> {
        let socket = self.connect().await?;
        let protocol = DataProtocol {
            secret: self.secret.clone(),
        };
        Link::start(socket, protocol).quote_session()
    }

    fn symbol_limit(&self) -> usize {
        self.symbol_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Inbound> {
        let mut p = DataProtocol {
            secret: Secret::new("s"),
        };
        p.read(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_frame_of_quotes_reads_each_and_a_symbol_limit_answers_the_request() {
        let quotes = read(
            r#"[{"T":"q","S":"AA","bp":10.5,"bs":2,"ap":10.6,"as":1,"t":"2026-12-01T14:30:00Z"},
               {"T":"q","S":"BB","bp":1,"bs":2,"ap":1.01,"as":1,"t":"2026-12-01T14:30:00Z"}]"#,
        );
        assert!(matches!(&quotes[..], [Inbound::Quote(a), Inbound::Quote(b)]
            if a.symbol == "AA" && b.ask == Some("1.01".parse().unwrap())));
        let refused = read(r#"[{"T":"error","code":405,"msg":"symbol limit exceeded"}]"#);
        assert!(matches!(&refused[..],
            [Inbound::Answer(Err(StreamError::Refused { code, .. }))] if code == "405"));
        let taken = read(r#"[{"T":"error","code":406,"msg":"connection limit exceeded"}]"#);
        assert!(matches!(&taken[..], [Inbound::Fatal(_)]));
    }
}
