//! Alpaca's market data, served beside the Trading API as if it were the data host:
//! latest quotes over REST (`GET /v2/stocks/quotes/latest`, through the v2 pipeline) and
//! the real-time stream at `/v2/iex` and `/v2/sip`, where credentials come in an `auth`
//! message and every frame is a JSON array of messages, as Alpaca sends them.
//!
//! Error codes on the stream are Alpaca's: 400 invalid syntax, 401 not authenticated,
//! 402 auth failed, 403 already authenticated, 405 symbol limit exceeded, 406 connection
//! limit exceeded (one data connection per key), 409 insufficient subscription (the
//! `/v2/otc` feed, which the sim's "plan" does not include).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::market::Quote;
use crate::state::AppState;
use crate::stream::{Connection, Ended, Framing, Kind, Next};

/// The route key of the latest-quotes snapshot, in stats and fault rules.
pub(crate) const LATEST_QUOTES: &str = "GET /v2/stocks/quotes/latest";

/// The stream endpoints, outside the v2 pipeline: their credentials come in a message.
pub(crate) fn stream_router(app: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/iex", get(|s, ws| upgrade(s, ws, Feed::Served)))
        .route("/v2/sip", get(|s, ws| upgrade(s, ws, Feed::Served)))
        .route("/v2/otc", get(|s, ws| upgrade(s, ws, Feed::NotSubscribed)))
        .with_state(app)
}

/// A quote in Alpaca's shape: prices and sizes as JSON numbers, the exchange codes and
/// conditions of an IEX quote (`V`, `R`, tape `C`), nanosecond timestamps.
#[derive(Serialize)]
struct AlpacaQuote {
    #[serde(rename = "T", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(rename = "S", skip_serializing_if = "Option::is_none")]
    symbol: Option<String>,
    ap: f64,
    #[serde(rename = "as")]
    ask_size: u64,
    ax: &'static str,
    bp: f64,
    bs: u64,
    bx: &'static str,
    c: [&'static str; 1],
    t: String,
    z: &'static str,
}

impl AlpacaQuote {
    fn new(q: &Quote, at: DateTime<Utc>) -> Self {
        let num = |d: Decimal| d.to_f64().unwrap_or_default();
        let size = |d: Decimal| d.to_u64().unwrap_or_default();
        AlpacaQuote {
            kind: None,
            symbol: None,
            ap: num(q.ask),
            ask_size: size(q.ask_size),
            ax: "V",
            bp: num(q.bid),
            bs: size(q.bid_size),
            bx: "V",
            c: ["R"],
            t: at.to_rfc3339_opts(SecondsFormat::Nanos, true),
            z: "C",
        }
    }

    fn message(symbol: &str, q: &Quote, at: DateTime<Utc>) -> Self {
        AlpacaQuote {
            kind: Some("q"),
            symbol: Some(symbol.to_owned()),
            ..AlpacaQuote::new(q, at)
        }
    }
}

#[derive(Serialize)]
pub(crate) struct LatestQuotes {
    quotes: BTreeMap<String, AlpacaQuote>,
}

/// `GET /v2/stocks/quotes/latest?symbols=A,B`: unknown symbols are left out of the map,
/// as Alpaca does; `feed` and `currency` are accepted and ignored.
pub(crate) async fn latest_quotes(
    State(app): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Json<LatestQuotes>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_query", None, format!("{e}")))?;
    let symbols = crate::quotes::parse_symbols(&pairs)?;
    let (quotes, at) = crate::quotes::snapshot(&app, &symbols);
    let quotes = quotes
        .iter()
        .map(|(s, q)| (s.clone(), AlpacaQuote::new(q, at)))
        .collect();
    Ok(Json(LatestQuotes { quotes }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Feed {
    Served,
    NotSubscribed,
}

async fn upgrade(State(app): State<Arc<AppState>>, ws: WebSocketUpgrade, feed: Feed) -> Response {
    ws.on_upgrade(move |socket| session(app, socket, feed))
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum ClientMessage {
    Auth {
        key: String,
        secret: String,
    },
    Subscribe {
        #[serde(default)]
        trades: Vec<String>,
        #[serde(default)]
        quotes: Vec<String>,
    },
    Unsubscribe {
        #[serde(default)]
        trades: Vec<String>,
        #[serde(default)]
        quotes: Vec<String>,
    },
}

fn success(msg: &str) -> String {
    json!([{ "T": "success", "msg": msg }]).to_string()
}

fn error(code: u16, msg: &str) -> String {
    json!([{ "T": "error", "code": code, "msg": msg }]).to_string()
}

async fn session(app: Arc<AppState>, socket: WebSocket, feed: Feed) {
    let mut conn = Connection::new(app.clone(), socket, ROUTE, Framing::Text);
    let ended = match run(&app, &mut conn, feed).await {
        Ok(never) => match never {},
        Err(ended) => ended,
    };
    conn.close(ended).await;
}

/// The data stream's route, for logs.
const ROUTE: &str = "GET /v2/{feed}";

async fn run(
    app: &AppState,
    conn: &mut Connection,
    feed: Feed,
) -> Result<std::convert::Infallible, Ended> {
    conn.send(success("connected")).await?;
    let mut trades: Vec<String> = Vec::new();
    loop {
        let bytes = match conn.next(&mut None).await {
            Next::Client(bytes) => bytes,
            Next::Event(_) => continue,
            Next::Quotes => {
                send_quotes(app, conn).await?;
                continue;
            }
            Next::Ended(ended) => return Err(ended),
        };
        let authed = conn.is_claimed();
        match serde_json::from_slice::<ClientMessage>(&bytes) {
            Err(_) => conn.send(error(400, "invalid syntax")).await?,
            Ok(ClientMessage::Auth { .. }) if authed => {
                conn.send(error(403, "already authenticated")).await?
            }
            Ok(ClientMessage::Auth { key, secret }) => {
                // As over REST: an account's key is both its key id and its secret.
                let Some(acct) = app.account_of_key(&key).filter(|_| key == secret) else {
                    conn.send(error(402, "auth failed")).await?;
                    return Err(Ended::Refused);
                };
                if feed == Feed::NotSubscribed {
                    conn.send(error(409, "insufficient subscription")).await?;
                    return Err(Ended::Refused);
                }
                if !conn.claim_kind(acct, Kind::Data) {
                    conn.send(error(406, "connection limit exceeded")).await?;
                    return Err(Ended::Refused);
                }
                conn.send(success("authenticated")).await?;
            }
            Ok(_) if !authed => conn.send(error(401, "not authenticated")).await?,
            Ok(ClientMessage::Subscribe {
                trades: t,
                quotes: q,
            }) => {
                let symbols = crate::quotes::known(app, &upper(q));
                if conn.add_quotes(&symbols).is_err() {
                    conn.send(error(405, "symbol limit exceeded")).await?;
                    continue;
                }
                for s in crate::quotes::known(app, &upper(t)) {
                    if !trades.contains(&s) {
                        trades.push(s);
                    }
                }
                conn.send(subscription(conn, &trades)).await?;
            }
            Ok(ClientMessage::Unsubscribe {
                trades: t,
                quotes: q,
            }) => {
                conn.remove_quotes(&upper(q));
                let t = upper(t);
                trades.retain(|s| !t.contains(s));
                conn.send(subscription(conn, &trades)).await?;
            }
        }
    }
}

/// The whole subscription after a change, every channel listed as Alpaca lists them.
fn subscription(conn: &Connection, trades: &[String]) -> String {
    let none: [&str; 0] = [];
    let message: Value = json!([{
        "T": "subscription",
        "trades": trades,
        "quotes": conn.quote_symbols(),
        "bars": none,
        "updatedBars": none,
        "dailyBars": none,
        "statuses": none,
        "lulds": none,
        "corrections": trades,
        "cancelErrors": trades,
    }]);
    message.to_string()
}

/// One frame with a quote per subscribed symbol, read at one market tick.
async fn send_quotes(app: &AppState, conn: &mut Connection) -> Result<(), Ended> {
    let (quotes, at) = crate::quotes::snapshot(app, &conn.quote_symbols());
    if quotes.is_empty() {
        return Ok(());
    }
    let batch: Vec<AlpacaQuote> = quotes
        .iter()
        .map(|(s, q)| AlpacaQuote::message(s, q, at))
        .collect();
    let json = serde_json::to_string(&batch).expect("quotes serialize");
    conn.send_quotes(json, batch.len() as u64).await
}

fn upper(symbols: Vec<String>) -> Vec<String> {
    symbols
        .into_iter()
        .map(|s| s.trim().to_uppercase())
        .collect()
}
