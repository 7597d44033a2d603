//! `GET /stream`: Alpaca's trade updates. Credentials come in a message, not on the
//! upgrade, so the upgrade itself is open; every frame the server sends is binary JSON,
//! as Alpaca's paper stream does. No sequence numbers and no replay: a client that
//! reconnects learns what it missed over REST, as with Alpaca.

use std::sync::Arc;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::wire::{Authorization, Listening, StreamError, StreamMessage, TradeUpdate};
use crate::state::{lock, AppState};
use crate::stream::{Connection, Ended, Framing, Next};

pub(crate) const ROUTE: &str = "GET /stream";

/// The one stream served; others asked for are left out of the acknowledgement.
const TRADE_UPDATES: &str = "trade_updates";

pub(crate) async fn upgrade(State(app): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(app, socket))
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum ClientMessage {
    /// Today's form.
    Auth {
        key: String,
        secret: String,
    },
    /// The older form, still sent by many clients.
    Authenticate {
        data: KeyPair,
    },
    Listen {
        data: ListenData,
    },
}

#[derive(Deserialize)]
struct KeyPair {
    key_id: String,
    secret_key: String,
}

#[derive(Deserialize)]
struct ListenData {
    streams: Vec<String>,
}

fn authorization(status: &'static str, action: &'static str) -> String {
    json(&StreamMessage {
        stream: "authorization",
        data: Authorization { status, action },
    })
}

async fn session(app: Arc<AppState>, socket: WebSocket) {
    let mut conn = Connection::new(app.clone(), socket, ROUTE, Framing::Binary);
    let ended = match run(&app, &mut conn).await {
        Ok(never) => match never {},
        Err(ended) => ended,
    };
    conn.close(ended).await;
}

/// Runs the connection until it ends; the error says how.
async fn run(app: &AppState, conn: &mut Connection) -> Result<std::convert::Infallible, Ended> {
    let mut live = None;
    let acct = loop {
        let bytes = match conn.next(&mut live).await {
            Next::Client(bytes) => bytes,
            Next::Event(_) | Next::Quotes => continue,
            Next::Ended(ended) => return Err(ended),
        };
        match parse(&bytes) {
            Ok(ClientMessage::Auth { key, secret })
            | Ok(ClientMessage::Authenticate {
                data:
                    KeyPair {
                        key_id: key,
                        secret_key: secret,
                    },
            }) => {
                // As over REST: an account's key is both its key id and its secret.
                match app.account_of_key(&key).filter(|_| key == secret) {
                    Some(acct) => break acct,
                    None => {
                        conn.send(authorization("unauthorized", "authenticate"))
                            .await?;
                        return Err(Ended::Refused);
                    }
                }
            }
            Ok(ClientMessage::Listen { .. }) => {
                conn.send(authorization("unauthorized", "listen")).await?;
            }
            Err(message) => conn.send(json(&StreamError::new(message))).await?,
        }
    };
    if !conn.claim(acct) {
        conn.send(json(&StreamError::new("connection limit exceeded")))
            .await?;
        return Err(Ended::Refused);
    }
    conn.send(authorization("authorized", "authenticate"))
        .await?;
    loop {
        match conn.next(&mut live).await {
            Next::Client(bytes) => match parse(&bytes) {
                Ok(ClientMessage::Listen { data }) => {
                    let streams: Vec<String> = data
                        .streams
                        .into_iter()
                        .filter(|s| s == TRADE_UPDATES)
                        .take(1)
                        .collect();
                    if streams.is_empty() {
                        live = None;
                    } else if live.is_none() {
                        live = Some(lock(&app.engine).events.subscribe(acct, None).live);
                    }
                    let listening = StreamMessage {
                        stream: "listening",
                        data: Listening { streams },
                    };
                    conn.send(json(&listening)).await?;
                }
                Ok(ClientMessage::Auth { .. } | ClientMessage::Authenticate { .. }) => {
                    conn.send(authorization("authorized", "authenticate"))
                        .await?;
                }
                Err(message) => conn.send(json(&StreamError::new(message))).await?,
            },
            Next::Event(event) => {
                let update = StreamMessage {
                    stream: TRADE_UPDATES,
                    data: TradeUpdate::new(&event),
                };
                conn.deliver(json(&update)).await?;
            }
            Next::Quotes => {}
            Next::Ended(ended) => return Err(ended),
        }
    }
}

fn parse(bytes: &[u8]) -> Result<ClientMessage, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid message: {e}"))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("stream messages serialize")
}
