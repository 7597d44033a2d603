//! A graphql-transport-ws client, spoken frame by frame as the protocol says
//! (connection_init → connection_ack, subscribe, next/error/complete, ping → pong),
//! so the tests see what a real client library sees.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestApp;

/// Long enough for a loaded CI machine; a test that waits this long has failed.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// A message of the protocol, as the server sent it.
#[derive(Debug)]
pub enum Incoming {
    Next {
        id: String,
        payload: Value,
    },
    Error {
        id: String,
        payload: Value,
    },
    Complete,
    /// The socket closed.
    Closed,
}

impl TestApp {
    /// A connection acknowledged by the gateway, authenticated with the app's key
    /// in `connection_init` as browsers must (they cannot set upgrade headers).
    pub async fn ws(&self) -> WsClient {
        WsClient::connect(self.addr, self.key.as_deref()).await
    }
}

impl WsClient {
    /// An acknowledged connection to the gateway at `addr`, with `key` (if any) in
    /// `connection_init`.
    pub async fn connect(addr: SocketAddr, key: Option<&str>) -> WsClient {
        let mut client = WsClient::upgrade(addr).await;
        let payload = match key {
            Some(key) => json!({ "Authorization": format!("Bearer {key}") }),
            None => json!({}),
        };
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        match client.raw().await {
            Some(m) if m["type"] == "connection_ack" => client,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    async fn upgrade(addr: SocketAddr) -> WsClient {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the gateway upgrades /graphql");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        WsClient { socket, next_id: 1 }
    }
}

impl WsClient {
    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// Starts an operation; returns its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.send(json!({
            "id": id, "type": "subscribe",
            "payload": { "query": query, "variables": variables },
        }))
        .await;
        id
    }

    /// The next protocol message; pings are answered on the way. Panics when none
    /// comes within the test's patience (pings do not count).
    pub async fn next(&mut self) -> Incoming {
        tokio::time::timeout(PATIENCE, self.next_message())
            .await
            .expect("a protocol message within the test's patience")
    }

    async fn next_message(&mut self) -> Incoming {
        loop {
            let Some(m) = self.raw().await else {
                return Incoming::Closed;
            };
            if m.get("close").is_some() {
                return Incoming::Closed;
            }
            let id = m["id"].as_str().unwrap_or_default().to_string();
            match m["type"].as_str() {
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                Some("pong") => {}
                Some("next") => {
                    return Incoming::Next {
                        id,
                        payload: m["payload"].clone(),
                    }
                }
                Some("error") => {
                    return Incoming::Error {
                        id,
                        payload: m["payload"].clone(),
                    }
                }
                Some("complete") => return Incoming::Complete,
                other => panic!("unexpected message type {other:?}: {m}"),
            }
        }
    }

    /// The `data` of the next `next` message; panics on anything else.
    pub async fn next_data(&mut self) -> Value {
        match self.next().await {
            Incoming::Next { payload, .. } => {
                assert!(payload.get("errors").is_none(), "{payload:#}");
                payload["data"].clone()
            }
            other => panic!("expected next, got {other:?}"),
        }
    }

    /// The next message within `wait`, or `None` if the server sent nothing.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Incoming> {
        tokio::time::timeout(wait, self.next()).await.ok()
    }

    /// One frame as JSON; a close frame as `{"close": code}`; `None` at the end.
    async fn raw(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("the gateway answers within the test's patience");
            match frame {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("JSON message"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(json!({ "close": frame.map(|f| u16::from(f.code)) }))
                }
                Some(Ok(_)) => {}
            }
        }
    }
}
