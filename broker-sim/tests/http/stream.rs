//! The order streams over real WebSockets: the generic `GET /v1/stream` (events, seq,
//! replay, one connection per key, stream faults, drop and reset) and Alpaca's trade
//! updates at `GET /stream`. Every wait is for a message, with a generous timeout.

use std::time::Duration;

use broker_sim::{Dialect, SimConfig, SimHandle};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::*;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

fn ws_url(sim: &SimHandle, path: &str) -> String {
    format!("{}{path}", sim.base_url().replacen("http", "ws", 1))
}

pub(crate) async fn try_connect(
    sim: &SimHandle,
    key: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = ws_url(sim, "/v1/stream").into_client_request().unwrap();
    if let Some(key) = key {
        req.headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

async fn connect(sim: &SimHandle, key: &str) -> Ws {
    try_connect(sim, Some(key)).await.expect("stream connects")
}

/// The next text or binary message as JSON, skipping pings; panics on close or timeout.
async fn next(ws: &mut Ws) -> Value {
    next_frame(ws).await.1
}

/// As [`next`], telling whether the frame was binary.
async fn next_frame(ws: &mut Ws) -> (bool, Value) {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the stream is still open")
            .expect("a well-formed frame");
        match msg {
            Message::Text(t) => return (false, serde_json::from_str(&t).unwrap()),
            Message::Binary(b) => return (true, serde_json::from_slice(&b).unwrap()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// How the server ended the connection.
#[derive(Debug, PartialEq)]
enum Ending {
    /// A close frame with this code.
    Closed(u16),
    /// The socket went away without a closing handshake.
    Abrupt,
}

/// Waits for the end of the connection; panics if a message arrives first.
async fn ending(ws: &mut Ws) -> Ending {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the connection ends within the timeout");
        match msg {
            None | Some(Err(_)) => return Ending::Abrupt,
            Some(Ok(Message::Close(frame))) => {
                return Ending::Closed(frame.map_or(1005, |f| f.code.into()))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("expected the end, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

async fn subscribe(ws: &mut Ws, since: Option<u64>) -> Value {
    let mut msg = json!({"action": "subscribe", "orders": true, "quotes": []});
    if let Some(since) = since {
        msg["since"] = json!(since);
    }
    send(ws, msg).await;
    let ack = next(ws).await;
    assert_eq!(ack["type"], "subscribed", "{ack}");
    ack
}

/// Reads order events until one for `event` arrives; returns all read.
async fn events_until(ws: &mut Ws, event: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let msg = next(ws).await;
        assert_eq!(msg["type"], "order", "{msg}");
        let done = msg["event"] == event;
        seen.push(msg);
        if done {
            return seen;
        }
    }
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// A lot-1, cent-tick symbol at 10.00, so fills are easy to predict.
async fn ten_dollar_symbol(api: &Api, sim: &SimHandle) -> String {
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_price(&sym, "10.00").await;
    sym
}

async fn buy(api: &Api, sym: &str, qty: &str) -> Value {
    let r = api.order(market(sym, "buy", qty), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

/// Waits until the sim has released every stream slot, so a reconnect is not refused.
async fn until_no_stream_is_open(sim: &SimHandle) {
    tokio::time::timeout(WAIT, async {
        while sim.stats().await.streams.open > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the sim notices the closed connection");
}

#[tokio::test]
async fn a_market_order_streams_new_then_fill_carrying_the_order_as_rest_shows_it() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    let mut ws = connect(&sim, KEY).await;
    let ack = subscribe(&mut ws, None).await;
    assert_eq!(
        ack,
        json!({"type": "subscribed", "orders": true, "quotes": [], "seq": 0})
    );
    let (_, ask) = api.quote(&sym).await;
    let created = buy(&api, &sym, "5").await;
    let events = events_until(&mut ws, "fill").await;
    assert_eq!(names(&events), ["new", "fill"]);
    assert_eq!(seqs(&events), [1, 2]);
    let (new, fill) = (&events[0], &events[1]);
    assert_eq!(new["order"]["id"], created["id"]);
    assert_eq!(new["order"]["status"], "accepted");
    assert_eq!(new["position_qty"], "0");
    for absent in ["execution_id", "price", "qty"] {
        assert!(new.get(absent).is_none(), "{absent} only on fills: {new}");
    }
    let now = api
        .get(&format!("/v1/orders/{}", created["id"].as_str().unwrap()))
        .await
        .body;
    assert_eq!(
        fill["order"], now,
        "the event carries the order as REST shows it"
    );
    assert_eq!(now["status"], "filled");
    assert_eq!((dec(&fill["price"]), &fill["qty"]), (ask, &json!("5")));
    assert_eq!(fill["position_qty"], "5");
    assert!(fill["execution_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(chrono::DateTime::parse_from_rfc3339(fill["timestamp"].as_str().unwrap()).is_ok());
    let stats = sim.stats().await;
    assert_eq!(stats.count_status("GET /v1/stream", 101), 1);
    assert_eq!((stats.streams.opened, stats.streams.open), (1, 1));
    assert_eq!(stats.streams.sent, 3, "the ack and two events");
}

#[tokio::test]
async fn a_large_order_fills_in_parts_and_cancels_and_expiries_are_published() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    // 250 000 USD of liquidity per tick: 25 000 shares at 10.00.
    buy(&api, &sym, "60000").await;
    let mut events = events_until(&mut ws, "partial_fill").await;
    sim.set_price(&sym, "10.00").await;
    sim.set_price(&sym, "10.00").await;
    events.extend(events_until(&mut ws, "fill").await);
    assert_eq!(
        names(&events),
        ["new", "partial_fill", "partial_fill", "fill"]
    );
    assert_eq!(seqs(&events), [1, 2, 3, 4]);
    let qty: Vec<&Value> = events[1..].iter().map(|e| &e["qty"]).collect();
    assert_eq!(qty, [&json!("25000"), &json!("25000"), &json!("10000")]);
    let held: Vec<&Value> = events[1..].iter().map(|e| &e["position_qty"]).collect();
    assert_eq!(held, [&json!("25000"), &json!("50000"), &json!("60000")]);
    assert_eq!(events[1]["order"]["status"], "partially_filled");
    assert_eq!(events[1]["order"]["filled_quantity"], "25000");

    let resting = api.order(limit(&sym, "buy", "1", "5.00"), None).await.body;
    let id = resting["id"].as_str().unwrap();
    assert_eq!(names(&events_until(&mut ws, "new").await), ["new"]);
    api.delete(&format!("/v1/orders/{id}")).await;
    let canceled = events_until(&mut ws, "canceled").await;
    assert_eq!(seqs(&canceled), [6]);
    assert_eq!(canceled[0]["order"]["status"], "canceled");
    assert_eq!(canceled[0]["position_qty"], "60000");

    let day = json!({"symbol": sym, "side": "buy", "type": "limit", "quantity": "1",
        "limit_price": "5.00", "time_in_force": "day"});
    api.order(day, None).await;
    sim.close_session().await;
    let expired = events_until(&mut ws, "expired").await;
    assert_eq!(names(&expired), ["new", "expired"]);
    assert_eq!(expired[1]["order"]["status"], "expired");
}

#[tokio::test]
async fn since_replays_exactly_the_missed_events_then_live_follows() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    buy(&api, &sym, "1").await;
    buy(&api, &sym, "1").await;
    let seen = [
        events_until(&mut ws, "fill").await,
        events_until(&mut ws, "fill").await,
    ]
    .concat();
    assert_eq!(seqs(&seen), [1, 2, 3, 4]);
    ws.close(None).await.unwrap();
    until_no_stream_is_open(&sim).await;
    let missed = buy(&api, &sym, "2").await;

    let mut ws = connect(&sim, KEY).await;
    let ack = subscribe(&mut ws, Some(4)).await;
    assert_eq!(ack["seq"], 6);
    let replayed = events_until(&mut ws, "fill").await;
    assert_eq!(seqs(&replayed), [5, 6]);
    assert_eq!(replayed[0]["order"]["id"], missed["id"]);
    buy(&api, &sym, "3").await;
    let live = events_until(&mut ws, "fill").await;
    assert_eq!(
        seqs(&live),
        [7, 8],
        "no gap and no duplicate after the replay"
    );

    // Unsubscribing stops the events; subscribing with since picks them up again.
    send(
        &mut ws,
        json!({"action": "unsubscribe", "orders": true, "quotes": []}),
    )
    .await;
    let ack = next(&mut ws).await;
    assert_eq!(
        ack,
        json!({"type": "subscribed", "orders": false, "quotes": [], "seq": 8})
    );
    buy(&api, &sym, "4").await;
    let ack = subscribe(&mut ws, Some(8)).await;
    assert_eq!((&ack["orders"], &ack["seq"]), (&json!(true), &json!(10)));
    assert_eq!(seqs(&events_until(&mut ws, "fill").await), [9, 10]);
}

#[tokio::test]
async fn a_repeated_subscribe_keeps_the_live_feed_it_has() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    // Held events: the second subscribe arrives while the fill is still queued.
    sim.set_faults(json!({"rules": [{"kind": "stream_delay", "ms": 100}]}))
        .await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    buy(&api, &sym, "1").await;
    send(&mut ws, json!({"action": "subscribe", "orders": true})).await;
    let mut events = Vec::new();
    let mut acks = 0;
    while events.len() < 2 {
        let msg = next(&mut ws).await;
        match msg["type"].as_str() {
            Some("subscribed") => acks += 1,
            _ => events.push(msg),
        }
    }
    assert_eq!(seqs(&events), [1, 2]);
    if acks == 0 {
        assert_eq!(next(&mut ws).await["type"], "subscribed");
    }
}

#[tokio::test]
async fn a_since_older_than_the_history_is_replay_unavailable_then_live() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    let mut ws = connect(&sim, KEY).await;
    let ack = subscribe(&mut ws, Some(3)).await;
    assert_eq!(ack["seq"], 0);
    let error = next(&mut ws).await;
    assert_eq!(
        (&error["type"], &error["code"]),
        (&json!("error"), &json!("replay_unavailable")),
        "a since beyond the newest seq (a sim that was reset since) cannot be replayed"
    );
    ws.close(None).await.unwrap();

    // 501 market orders: 1002 events, one more than the sim keeps.
    for _ in 0..501 {
        buy(&api, &sym, "1").await;
    }
    until_no_stream_is_open(&sim).await;
    let mut ws = connect(&sim, KEY).await;
    let ack = subscribe(&mut ws, Some(0)).await;
    assert_eq!(ack["seq"], 1002);
    let error = next(&mut ws).await;
    assert_eq!(error["code"], "replay_unavailable", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    buy(&api, &sym, "1").await;
    assert_eq!(seqs(&events_until(&mut ws, "fill").await), [1003, 1004]);
    drop(ws);

    until_no_stream_is_open(&sim).await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, Some(4)).await;
    let replayed = events_until(&mut ws, "new").await;
    assert_eq!(replayed[0]["seq"], 5, "the oldest event still held");
}

#[tokio::test]
async fn one_connection_per_key_and_a_second_is_refused_and_counted() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let mut first = connect(&sim, KEY).await;
    subscribe(&mut first, None).await;
    let mut second = connect(&sim, KEY).await;
    let error = next(&mut second).await;
    assert_eq!(
        (&error["type"], &error["code"]),
        (&json!("error"), &json!("connection_limit_exceeded"))
    );
    assert_eq!(ending(&mut second).await, Ending::Closed(1008));
    let mut other = connect(&sim, "other-key").await;
    subscribe(&mut other, None).await;
    let streams = sim.stats().await.streams;
    assert_eq!(
        (streams.opened, streams.open, streams.refused),
        (2, 2, 1),
        "{streams:?}"
    );
    subscribe(&mut first, None).await;
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_401_before_any_upgrade() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    for key in [None, Some("wrong-key")] {
        match try_connect(&sim, key).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401)
            }
            other => panic!("expected a 401, got {:?}", other.map(|_| "a WebSocket")),
        }
    }
    let r = Api::new(&sim).get("/v1/stream").await;
    assert_eq!(
        (r.status, r.body["error"].is_object()),
        (400, true),
        "a plain GET is refused in the envelope: {}",
        r.body
    );
    let stats = sim.stats().await;
    assert_eq!(stats.count_status("GET /v1/stream", 401), 2);
    assert_eq!(stats.streams.opened, 0);
}

#[tokio::test]
async fn malformed_messages_get_bad_request_and_the_connection_stays_open() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let mut ws = connect(&sim, KEY).await;
    for junk in [
        "garbage".to_string(),
        json!({"action": "dance"}).to_string(),
        json!({"action": "subscribe", "orders": "yes"}).to_string(),
        json!({"action": "subscribe", "order": true}).to_string(),
        json!([1, 2]).to_string(),
    ] {
        ws.send(Message::Text(junk.clone().into())).await.unwrap();
        let error = next(&mut ws).await;
        assert_eq!(
            (&error["type"], &error["code"]),
            (&json!("error"), &json!("bad_request")),
            "{junk}: {error}"
        );
    }
    ws.send(Message::Binary(vec![0xff, 0x00].into()))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["code"], "bad_request");
    let ack = subscribe(&mut ws, None).await;
    assert_eq!(
        ack["orders"], true,
        "quotes are accepted and not served yet"
    );
}

#[tokio::test]
async fn stream_lose_skips_messages_visibly_and_counts_them() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    sim.set_faults(json!({"seed": 3, "rules": [
        {"route": "GET /v1/stream", "kind": "stream_lose", "rate": 0.5}]}))
        .await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    for _ in 0..10 {
        buy(&api, &sym, "1").await;
    }
    // Every event is either sent or lost; wait until all 20 are accounted for.
    let streams = tokio::time::timeout(WAIT, async {
        loop {
            let s = sim.stats().await.streams;
            if s.sent - 1 + s.lost == 20 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("all events accounted for");
    let mut received = Vec::new();
    for _ in 0..streams.sent - 1 {
        received.push(next(&mut ws).await["seq"].as_u64().unwrap());
    }
    assert!(streams.lost > 0, "{streams:?}");
    assert!(received.windows(2).all(|w| w[0] < w[1]), "{received:?}");
    assert!(
        received.windows(2).any(|w| w[1] - w[0] > 1) || received.first() != Some(&1),
        "a gap in seq shows what was lost: {received:?}"
    );
    let stats = sim.stats().await;
    assert_eq!(stats.faults_injected["stream_lose"], streams.lost);
}

#[tokio::test]
async fn stream_duplicate_sends_an_event_twice() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    sim.set_faults(json!({"rules": [{"kind": "stream_duplicate"}]}))
        .await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    buy(&api, &sym, "1").await;
    let mut events = events_until(&mut ws, "fill").await;
    events.push(next(&mut ws).await);
    assert_eq!(seqs(&events), [1, 1, 2, 2]);
    assert_eq!(events[2], events[3]);
    let stats = sim.stats().await;
    assert_eq!(stats.faults_injected["stream_duplicate"], 2);
    assert_eq!(stats.streams.sent, 5);
}

#[tokio::test]
async fn stream_delay_holds_events_without_reordering_them() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    sim.set_faults(
        json!({"rules": [{"route": "GET /v1/stream", "kind": "stream_delay", "ms": 50}]}),
    )
    .await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    buy(&api, &sym, "1").await;
    buy(&api, &sym, "1").await;
    let mut events = events_until(&mut ws, "fill").await;
    events.extend(events_until(&mut ws, "fill").await);
    assert_eq!(seqs(&events), [1, 2, 3, 4]);
    assert_eq!(sim.stats().await.faults_injected["stream_delay"], 4);
}

#[tokio::test]
async fn stream_drop_closes_the_connection_and_since_recovers() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    sim.set_faults(json!({"rules": [{"route": "*", "kind": "stream_drop"}]}))
        .await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    buy(&api, &sym, "1").await;
    assert_eq!(ending(&mut ws).await, Ending::Abrupt);
    assert_eq!(sim.stats().await.faults_injected["stream_drop"], 1);
    sim.clear_faults().await;
    until_no_stream_is_open(&sim).await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, Some(0)).await;
    assert_eq!(seqs(&events_until(&mut ws, "fill").await), [1, 2]);
}

#[tokio::test]
async fn stream_faults_are_validated_against_the_stream_route() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let r = api
        .admin(
            Method::POST,
            "/sim/faults",
            Some(json!({"rules": [{"route": "GET /v1/orders", "kind": "stream_lose"}]})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_fault_profile"));
    let r = api
        .admin(
            Method::POST,
            "/sim/faults",
            Some(json!({"rules": [{"route": "GET /v1/stream", "kind": "status", "status": 503}]})),
        )
        .await;
    assert_eq!(r.status, 200, "request faults apply to the upgrade request");
    match try_connect(&sim, Some(KEY)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        other => panic!("expected a 503, got {:?}", other.map(|_| "a WebSocket")),
    }
}

#[tokio::test]
async fn sim_stream_drop_closes_every_connection() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let mut a = connect(&sim, KEY).await;
    subscribe(&mut a, None).await;
    let mut b = connect(&sim, "other-key").await;
    subscribe(&mut b, None).await;
    let r = api.admin(Method::POST, "/sim/stream/drop", None).await;
    assert_eq!((r.status, &r.body), (200, &json!({"dropped": 2})));
    assert_eq!(ending(&mut a).await, Ending::Abrupt);
    assert_eq!(ending(&mut b).await, Ending::Abrupt);
    until_no_stream_is_open(&sim).await;
    let mut a = connect(&sim, KEY).await;
    subscribe(&mut a, None).await;
    assert_eq!(sim.drop_streams().await, 1);
    assert_eq!(ending(&mut a).await, Ending::Abrupt);
}

#[tokio::test]
async fn reset_closes_streams_and_seq_starts_again() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = ten_dollar_symbol(&api, &sim).await;
    let mut ws = connect(&sim, KEY).await;
    subscribe(&mut ws, None).await;
    buy(&api, &sym, "1").await;
    assert_eq!(seqs(&events_until(&mut ws, "fill").await), [1, 2]);
    let r = api.admin(Method::POST, "/sim/reset", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(ending(&mut ws).await, Ending::Closed(1012));
    until_no_stream_is_open(&sim).await;
    let mut ws = connect(&sim, KEY).await;
    assert_eq!(subscribe(&mut ws, None).await["seq"], 0);
    let sym = ten_dollar_symbol(&api, &sim).await;
    buy(&api, &sym, "1").await;
    assert_eq!(seqs(&events_until(&mut ws, "fill").await), [1, 2]);
}

#[tokio::test]
async fn an_idle_connection_is_pinged() {
    let sim = broker_sim::spawn(SimConfig {
        stream_ping_ms: 20,
        ..config()
    })
    .await
    .unwrap();
    let mut ws = connect(&sim, KEY).await;
    let ping = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a ping within the timeout");
    assert!(matches!(ping, Some(Ok(Message::Ping(_)))), "{ping:?}");
    subscribe(&mut ws, None).await;
}

mod alpaca {
    use super::*;

    const KEY: &str = "alpaca-key";

    async fn sim() -> SimHandle {
        broker_sim::spawn(SimConfig {
            api_keys: vec![KEY.into(), "alpaca-other".into()],
            admin_token: Some(ADMIN.into()),
            tick_ms: 0,
            instruments: 100,
            rate_limit: 10_000,
            dialect: Dialect::Alpaca,
            ..Default::default()
        })
        .await
        .unwrap()
    }

    async fn open(sim: &SimHandle) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(ws_url(sim, "/stream"))
            .await
            .unwrap();
        ws
    }

    /// The next frame, which must be binary, as Alpaca's paper stream sends them.
    async fn binary(ws: &mut Ws) -> Value {
        let (is_binary, value) = next_frame(ws).await;
        assert!(is_binary, "a text frame: {value}");
        value
    }

    async fn authorized(sim: &SimHandle) -> Ws {
        let mut ws = open(sim).await;
        send(
            &mut ws,
            json!({"action": "auth", "key": KEY, "secret": KEY}),
        )
        .await;
        assert_eq!(
            binary(&mut ws).await,
            json!({"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}})
        );
        ws
    }

    async fn listen(ws: &mut Ws) {
        send(
            ws,
            json!({"action": "listen", "data": {"streams": ["trade_updates", "account_updates"]}}),
        )
        .await;
        assert_eq!(
            binary(ws).await,
            json!({"stream": "listening", "data": {"streams": ["trade_updates"]}})
        );
    }

    fn rest(sim: &SimHandle, method: Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", sim.base_url()))
            .header("APCA-API-KEY-ID", KEY)
            .header("APCA-API-SECRET-KEY", KEY)
    }

    async fn call(req: reqwest::RequestBuilder) -> Value {
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().await.unwrap()
    }

    async fn ten_dollar_asset(sim: &SimHandle) -> String {
        let assets = call(rest(sim, Method::GET, "/v2/assets")).await;
        let sym = assets
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["tradable"] == json!(true) && a["min_trade_increment"] == "1")
            .unwrap()["symbol"]
            .as_str()
            .unwrap()
            .to_owned();
        sim.set_price(&sym, "10.00").await;
        sym
    }

    async fn buy(sim: &SimHandle, sym: &str, qty: &str) -> Value {
        let order = json!({"symbol": sym, "qty": qty, "side": "buy", "type": "market",
            "time_in_force": "day"});
        call(rest(sim, Method::POST, "/v2/orders").json(&order)).await
    }

    #[tokio::test]
    async fn trade_updates_arrive_as_binary_frames_with_alpacas_fields() {
        let sim = sim().await;
        let sym = ten_dollar_asset(&sim).await;
        let mut ws = authorized(&sim).await;
        listen(&mut ws).await;
        let created = buy(&sim, &sym, "3").await;
        assert_eq!(created["status"], "pending_new", "accepted, not yet routed");
        let pending = binary(&mut ws).await;
        assert_eq!(pending["stream"], "trade_updates");
        assert_eq!(pending["data"]["event"], "pending_new");
        assert_eq!(pending["data"]["order"]["id"], created["id"]);
        assert_eq!(pending["data"]["order"]["status"], "pending_new");
        assert!(pending["data"].get("seq").is_none() && pending["data"].get("price").is_none());
        // The next tick routes it: `new`, then its fill.
        sim.tick(1).await;
        let new = binary(&mut ws).await;
        assert_eq!(new["data"]["event"], "new");
        assert_eq!(new["data"]["order"]["status"], "new");
        let fill = binary(&mut ws).await["data"].clone();
        assert_eq!(fill["event"], "fill");
        let path = format!("/v2/orders/{}", created["id"].as_str().unwrap());
        let now = call(rest(&sim, Method::GET, &path)).await;
        assert_eq!(fill["order"], now);
        // Routed at 10.00 before the tick moved the price: filled at the ask it
        // quoted, one or two ticks above.
        assert!(
            fill["price"] == "10.01" || fill["price"] == "10.02",
            "{}",
            fill["price"]
        );
        assert_eq!(
            (&fill["qty"], &fill["position_qty"]),
            (&json!("3"), &json!("3"))
        );
        assert!(fill["execution_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(chrono::DateTime::parse_from_rfc3339(fill["timestamp"].as_str().unwrap()).is_ok());
        let stats = sim.stats().await;
        assert_eq!(stats.count_status("GET /stream", 101), 1);
        assert_eq!((stats.streams.opened, stats.streams.sent), (1, 5));
    }

    #[tokio::test]
    async fn the_older_authenticate_form_works_and_bad_credentials_are_unauthorized() {
        let sim = sim().await;
        let mut ws = open(&sim).await;
        send(
            &mut ws,
            json!({"action": "listen", "data": {"streams": ["trade_updates"]}}),
        )
        .await;
        assert_eq!(
            binary(&mut ws).await["data"],
            json!({"status": "unauthorized", "action": "listen"})
        );
        send(
            &mut ws,
            json!({"action": "authenticate", "data": {"key_id": KEY, "secret_key": KEY}}),
        )
        .await;
        assert_eq!(binary(&mut ws).await["data"]["status"], "authorized");
        drop(ws);

        for (key, secret) in [("nope", "nope"), (KEY, "wrong-secret")] {
            let mut ws = open(&sim).await;
            send(
                &mut ws,
                json!({"action": "auth", "key": key, "secret": secret}),
            )
            .await;
            assert_eq!(
                binary(&mut ws).await,
                json!({"stream": "authorization", "data": {"status": "unauthorized", "action": "authenticate"}})
            );
            assert!(matches!(ending(&mut ws).await, Ending::Closed(_)));
        }
        let mut ws = open(&sim).await;
        send(&mut ws, json!({"action": "dance"})).await;
        let error = binary(&mut ws).await;
        assert_eq!(error["action"], "error");
        assert!(error["data"]["error_message"].is_string());
    }

    #[tokio::test]
    async fn a_second_connection_of_a_key_is_refused() {
        let sim = sim().await;
        let mut first = authorized(&sim).await;
        listen(&mut first).await;
        let mut second = open(&sim).await;
        send(
            &mut second,
            json!({"action": "auth", "key": KEY, "secret": KEY}),
        )
        .await;
        assert_eq!(
            binary(&mut second).await,
            json!({"action": "error", "data": {"error_message": "connection limit exceeded"}})
        );
        assert_eq!(ending(&mut second).await, Ending::Closed(1008));
        let streams = sim.stats().await.streams;
        assert_eq!((streams.opened, streams.open, streams.refused), (1, 1, 1));
    }

    #[tokio::test]
    async fn stream_faults_use_the_alpaca_route_key() {
        let sim = sim().await;
        let api = Api::with_key(&sim, KEY);
        let r = api
            .admin(
                Method::POST,
                "/sim/faults",
                Some(json!({"rules": [{"route": "GET /stream", "kind": "status", "status": 503}]})),
            )
            .await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_fault_profile"),
            "request faults never reach the Alpaca stream: its upgrade carries no credentials"
        );
        sim.set_faults(json!({"rules": [{"route": "GET /stream", "kind": "stream_drop"}]}))
            .await;
        let symbol = ten_dollar_asset(&sim).await;
        let mut ws = authorized(&sim).await;
        listen(&mut ws).await;
        buy(&sim, &symbol, "1").await;
        assert_eq!(ending(&mut ws).await, Ending::Abrupt);
        assert_eq!(sim.stats().await.faults_injected["stream_drop"], 1);
    }
}
