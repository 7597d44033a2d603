//! `GET /v1/stream`: the generic dialect's order stream. The upgrade goes through the
//! v1 pipeline (bearer auth, rate limit, request faults), so a bad key is a 401 before
//! any WebSocket exists. Over the socket: `subscribe`/`unsubscribe` in, `subscribed`,
//! `order` and `error` out, every order event numbered per account so a client can
//! resume with `since`.

use std::sync::Arc;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

use super::{Connection, Ended, Framing, Next};
use crate::events::{OrderEvent, Replay};
use crate::pipeline::Caller;
use crate::state::{lock, AppState};
use crate::wire::{QuoteJson, StreamError, StreamOrderEvent, Subscribed};

pub(crate) const ROUTE: &str = "GET /v1/stream";

pub(crate) async fn upgrade(
    State(app): State<Arc<AppState>>,
    Extension(Caller(acct)): Extension<Caller>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| session(app, acct, socket))
}

/// `subscribe` and `unsubscribe` name what they change; what is not named stays as it
/// was. Quote symbols add to (or leave) the connection's set; unknown symbols are left
/// out of the acknowledgement, which always lists the whole set.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Subscribe {
        orders: Option<bool>,
        #[serde(default)]
        quotes: Vec<String>,
        since: Option<u64>,
    },
    Unsubscribe {
        orders: Option<bool>,
        #[serde(default)]
        quotes: Vec<String>,
    },
}

/// What the connection has sent of the account's events.
struct Orders {
    live: Option<tokio::sync::broadcast::Receiver<Arc<OrderEvent>>>,
    /// Events up to here were sent (or deliberately lost); anything older that arrives
    /// live is a duplicate of the replay and is skipped.
    last_seq: u64,
}

async fn session(app: Arc<AppState>, acct: usize, socket: WebSocket) {
    let mut conn = Connection::new(app.clone(), socket, ROUTE, Framing::Text);
    if !conn.claim(acct) {
        let error = StreamError::new(
            "connection_limit_exceeded",
            "this API key already has a stream connection open; one is allowed",
        );
        let ended = conn
            .send(json(&error))
            .await
            .err()
            .unwrap_or(Ended::Refused);
        conn.close(ended).await;
        return;
    }
    let mut orders = Orders {
        live: None,
        last_seq: 0,
    };
    let ended = loop {
        let step = match conn.next(&mut orders.live).await {
            Next::Client(bytes) => answer(&app, acct, &mut conn, &mut orders, &bytes).await,
            Next::Event(event) if event.seq > orders.last_seq => {
                orders.last_seq = event.seq;
                conn.deliver(json(&StreamOrderEvent::new(&event))).await
            }
            Next::Event(_) => Ok(()),
            Next::Quotes => send_quotes(&app, &mut conn).await,
            Next::Ended(ended) => Err(ended),
        };
        if let Err(ended) = step {
            break ended;
        }
    };
    conn.close(ended).await;
}

async fn answer(
    app: &AppState,
    acct: usize,
    conn: &mut Connection,
    orders: &mut Orders,
    bytes: &[u8],
) -> Result<(), Ended> {
    let message = match serde_json::from_slice::<ClientMessage>(bytes) {
        Ok(message) => message,
        Err(e) => {
            let error = StreamError::new("bad_request", format!("invalid message: {e}"));
            return conn.send(json(&error)).await;
        }
    };
    let (on, since) = match message {
        ClientMessage::Subscribe {
            orders,
            quotes,
            since,
        } => {
            let symbols = crate::quotes::known(app, &upper(quotes));
            if let Err(limit) = conn.add_quotes(&symbols) {
                let error = StreamError::new(
                    "symbol_limit_exceeded",
                    format!(
                        "at most {} quote symbols per connection; none of this \
                         subscription's symbols were added",
                        limit.limit
                    ),
                );
                return conn.send(json(&error)).await;
            }
            (orders.filter(|o| *o), since)
        }
        ClientMessage::Unsubscribe { orders: o, quotes } => {
            if o == Some(true) {
                orders.live = None;
            }
            conn.remove_quotes(&upper(quotes));
            (None, None)
        }
    };
    // A repeated subscribe without `since` keeps the live feed it has: subscribing anew
    // would skip what is queued on it and not yet sent.
    let resubscribe = on.is_some() && (since.is_some() || orders.live.is_none());
    let (latest, replay) = if resubscribe {
        // Subscribing and reading the history under the engine lock: nothing published
        // can fall between the two.
        let sub = lock(&app.engine).events.subscribe(acct, since);
        orders.live = Some(sub.live);
        orders.last_seq = sub.latest;
        (sub.latest, sub.replay)
    } else {
        (lock(&app.engine).events.latest(acct), None)
    };
    let subscribed = Subscribed {
        kind: "subscribed",
        orders: orders.live.is_some(),
        quotes: conn.quote_symbols(),
        seq: latest,
    };
    conn.send(json(&subscribed)).await?;
    match replay {
        None => Ok(()),
        Some(Replay::Events(events)) => {
            for event in events {
                conn.deliver(json(&StreamOrderEvent::new(&event))).await?;
            }
            Ok(())
        }
        Some(Replay::Unavailable) => {
            let error = StreamError::new(
                "replay_unavailable",
                format!(
                    "events after seq {} are no longer held (the last {} per account are); \
                     live events follow from seq {}",
                    since.unwrap_or_default(),
                    crate::events::HISTORY,
                    latest + 1
                ),
            );
            conn.send(json(&error)).await
        }
    }
}

/// One quote per subscribed symbol, read at one market tick.
async fn send_quotes(app: &AppState, conn: &mut Connection) -> Result<(), Ended> {
    let (quotes, at) = crate::quotes::snapshot(app, &conn.quote_symbols());
    for (symbol, quote) in &quotes {
        conn.send_quote(json(&QuoteJson::message(symbol, quote, at)))
            .await?;
    }
    Ok(())
}

fn upper(symbols: Vec<String>) -> Vec<String> {
    symbols
        .into_iter()
        .map(|s| s.trim().to_uppercase())
        .collect()
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("stream messages serialize")
}
