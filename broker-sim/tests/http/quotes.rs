//! Quotes over real HTTP and WebSockets: `GET /v1/quotes` and quotes on `GET /v1/stream`
//! in the generic dialect; `GET /v2/stocks/quotes/latest` and the market data stream at
//! `/v2/iex` in the Alpaca dialect. Rates are asserted within generous bounds.

use std::str::FromStr;
use std::time::Duration;

use broker_sim::{SimConfig, SimHandle};
use futures_util::{SinkExt, StreamExt};
use rust_decimal::Decimal;
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

async fn connect_v1(sim: &SimHandle, key: &str) -> Ws {
    let mut req = ws_url(sim, "/v1/stream").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The next text or binary message as JSON, skipping pings; panics on close or timeout.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the stream is still open")
            .expect("a well-formed frame");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Binary(b) => return serde_json::from_slice(&b).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The next message that is not a quote.
async fn next_control(ws: &mut Ws) -> Value {
    loop {
        let m = next(ws).await;
        if m["type"] != "quote" {
            return m;
        }
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// Every message that arrives within `window`.
async fn collect(ws: &mut Ws, window: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Message::Text(t) => out.push(serde_json::from_str(&t).unwrap()),
            Message::Binary(b) => out.push(serde_json::from_slice(&b).unwrap()),
            _ => {}
        }
    }
    out
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap(),
        other => panic!("not a decimal: {other}"),
    }
}

/// The first `n` tradable instruments: symbol, tick size and lot size.
async fn instruments(api: &Api, n: usize) -> Vec<(String, Decimal, Decimal)> {
    let list = api.get("/v1/instruments?limit=100").await;
    list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|i| {
            (
                i["symbol"].as_str().unwrap().to_owned(),
                dec(&i["tick_size"]),
                Decimal::from_str(&i["lot_size"].to_string().replace('"', "")).unwrap(),
            )
        })
        .collect()
}

fn assert_on_grid(q: &Value, tick: Decimal, lot: Decimal) {
    let (bid, ask, last) = (dec(&q["bid"]), dec(&q["ask"]), dec(&q["last"]));
    assert!(bid < ask && bid <= last && last < ask, "{q}");
    for p in [bid, ask, last] {
        assert!((p % tick).is_zero(), "{p} off the tick {tick}: {q}");
    }
    for s in [dec(&q["bid_size"]), dec(&q["ask_size"])] {
        assert!(
            s >= lot && (s % lot).is_zero(),
            "{s} off the lot {lot}: {q}"
        );
    }
}

#[tokio::test]
async fn rest_quotes_are_on_the_grids_in_the_order_asked_and_unknown_symbols_are_left_out() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let insts = instruments(&api, 5).await;
    let asked: Vec<&str> = insts.iter().rev().map(|(s, _, _)| s.as_str()).collect();
    let r = api
        .get(&format!("/v1/quotes?symbols={},NOPE1", asked.join(",")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.body["data"].as_array().unwrap();
    let got: Vec<&str> = data.iter().map(|q| q["symbol"].as_str().unwrap()).collect();
    assert_eq!(got, asked);
    for (q, (sym, tick, lot)) in data.iter().zip(insts.iter().rev()) {
        assert_on_grid(q, *tick, *lot);
        assert!(q["bid"].is_string() && q["ask_size"].is_string());
        assert!(q["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(q["last"].as_str(), sim.price(sym).as_deref());
    }
    // A frozen market quotes the same twice; a lower-case symbol is the same symbol.
    let again = api
        .get(&format!("/v1/quotes?symbols={}", asked[0].to_lowercase()))
        .await;
    assert_eq!(again.body["data"][0]["bid"], data[0]["bid"]);
    assert_eq!(again.body["data"][0]["ask_size"], data[0]["ask_size"]);
    assert_eq!(sim.stats().await.count_status("GET /v1/quotes", 200), 2);
}

#[tokio::test]
async fn rest_quotes_refuse_more_than_100_symbols_and_an_empty_list() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let r = api
        .get(&format!("/v1/quotes?symbols={}", many.join(",")))
        .await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (400, "too_many_symbols", "symbols")
    );
    let r = api.get("/v1/quotes?symbols=").await;
    assert_eq!((r.status, r.code()), (400, "invalid_value"));
    let r = api.get("/v1/quotes").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn a_subscribed_symbol_ticks_at_about_quote_hz_until_unsubscribed() {
    let sim = broker_sim::spawn(SimConfig {
        quote_hz: 10,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    let insts = instruments(&api, 2).await;
    let (a, b) = (insts[0].0.clone(), insts[1].0.clone());
    let mut ws = connect_v1(&sim, KEY).await;
    send(&mut ws, json!({"action":"subscribe","quotes":[a, "NOPE1"]})).await;
    let ack = next_control(&mut ws).await;
    assert_eq!(ack["type"], "subscribed");
    assert_eq!(ack["quotes"], json!([a]), "unknown symbols are left out");
    assert_eq!(ack["orders"], false);
    send(
        &mut ws,
        json!({"action":"subscribe","quotes":[b.to_lowercase()]}),
    )
    .await;
    let ack = next_control(&mut ws).await;
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(ack["quotes"], json!(both));
    assert_eq!(sim.stats().await.streams.quote_symbols, both);

    let window = collect(&mut ws, Duration::from_millis(1500)).await;
    for sym in [&a, &b] {
        let n = window.iter().filter(|m| m["symbol"] == **sym).count();
        // 10 Hz over 1.5 s is 15; anything from 5 to 25 is "about".
        assert!((5..=25).contains(&n), "{sym}: {n} quotes in 1.5 s");
    }
    let q = window.iter().find(|m| m["symbol"] == *a).unwrap();
    assert_eq!(q["type"], "quote");
    assert_on_grid(q, insts[0].1, insts[0].2);
    for field in ["bid", "bid_size", "ask", "ask_size", "last", "timestamp"] {
        assert!(q[field].is_string(), "{field} in {q}");
    }

    send(&mut ws, json!({"action":"unsubscribe","quotes":[a]})).await;
    let ack = next_control(&mut ws).await;
    assert_eq!(ack["quotes"], json!([b]));
    assert_eq!(sim.stats().await.streams.quote_symbols, vec![b.clone()]);
    // Quotes already queued may still arrive; after a moment, only b ticks.
    collect(&mut ws, Duration::from_millis(300)).await;
    let window = collect(&mut ws, Duration::from_millis(1000)).await;
    assert!(window.iter().all(|m| m["symbol"] == *b), "{window:?}");
    assert!(window.len() >= 3, "b still ticks: {}", window.len());
    let stats = sim.stats().await;
    assert!(stats.streams.quotes_sent >= 20, "{:?}", stats.streams);

    // Closing the connection takes its symbols out of the union.
    ws.close(None).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while !sim.stats().await.streams.quote_symbols.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the closed connection's symbols leave the union");
}

#[tokio::test]
async fn beyond_the_symbol_limit_nothing_is_added() {
    let sim = broker_sim::spawn(SimConfig {
        stream_symbol_limit: 3,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    let syms: Vec<String> = instruments(&api, 5)
        .await
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    let mut ws = connect_v1(&sim, KEY).await;
    send(&mut ws, json!({"action":"subscribe","quotes":syms[..2]})).await;
    assert_eq!(
        next_control(&mut ws).await["quotes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Two more would make four: refused whole, and the set stays as it was.
    send(
        &mut ws,
        json!({"action":"subscribe","quotes":syms[2..4], "orders": true}),
    )
    .await;
    let error = next_control(&mut ws).await;
    assert_eq!(
        (&error["type"], &error["code"]),
        (&json!("error"), &json!("symbol_limit_exceeded")),
        "{error}"
    );
    assert!(error["message"].as_str().unwrap().contains('3'));
    assert_eq!(sim.stats().await.streams.quote_symbols, syms[..2].to_vec());
    // Re-subscribing what is held plus one fits.
    send(&mut ws, json!({"action":"subscribe","quotes":syms[..3]})).await;
    let ack = next_control(&mut ws).await;
    assert_eq!(ack["quotes"], json!(syms[..3]));
    assert_eq!(
        ack["orders"], false,
        "the refused message subscribed nothing"
    );
}

async fn alpaca_sim() -> SimHandle {
    broker_sim::spawn(SimConfig {
        dialect: broker_sim::Dialect::Alpaca,
        quote_hz: 10,
        stream_symbol_limit: 3,
        ..config()
    })
    .await
    .unwrap()
}

async fn alpaca_get(sim: &SimHandle, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("APCA-API-KEY-ID", KEY)
        .header("APCA-API-SECRET-KEY", KEY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The first `n` assets: symbol, the finest tick (Alpaca's assets carry none for
/// equities), minimum trade increment.
async fn assets(sim: &SimHandle, n: usize) -> Vec<(String, Decimal, Decimal)> {
    let (_, list) = alpaca_get(sim, "/v2/assets").await;
    let mut out: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["symbol"].as_str().unwrap().to_owned(),
                Decimal::new(1, 4),
                dec(&a["min_trade_increment"]),
            )
        })
        .collect();
    out.sort();
    out.truncate(n);
    out
}

async fn connect_data(sim: &SimHandle) -> Ws {
    let mut ws = tokio_tungstenite::connect_async(ws_url(sim, "/v2/iex"))
        .await
        .unwrap()
        .0;
    assert_eq!(
        next(&mut ws).await,
        json!([{"T":"success","msg":"connected"}])
    );
    ws
}

#[tokio::test]
async fn alpaca_latest_quotes_are_keyed_by_symbol_with_numbers() {
    let sim = alpaca_sim().await;
    let insts = assets(&sim, 3).await;
    let syms: Vec<&str> = insts.iter().map(|(s, _, _)| s.as_str()).collect();
    let (status, body) = alpaca_get(
        &sim,
        &format!(
            "/v2/stocks/quotes/latest?symbols={},NOPE1&feed=iex",
            syms.join(",")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let quotes = body["quotes"].as_object().unwrap();
    assert_eq!(quotes.len(), 3, "unknown symbols are left out: {body}");
    for (sym, tick, lot) in &insts {
        let q = &quotes[sym.as_str()];
        assert!(
            q["ap"].is_number() && q["bp"].is_number() && q["as"].is_u64(),
            "{q}"
        );
        let (bid, ask) = (dec(&q["bp"]), dec(&q["ap"]));
        assert!(
            bid < ask && (bid % tick).is_zero() && (ask % tick).is_zero(),
            "{q}"
        );
        assert!((dec(&q["bs"]) % lot).is_zero() && (dec(&q["as"]) % lot).is_zero());
        assert_eq!(
            (&q["ax"], &q["bx"], &q["z"]),
            (&json!("V"), &json!("V"), &json!("C"))
        );
        assert_eq!(q["c"], json!(["R"]));
        assert!(q["t"].as_str().unwrap().ends_with('Z'));
    }
    let stats = sim.stats().await;
    assert_eq!(stats.count_status("GET /v2/stocks/quotes/latest", 200), 1);
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let (status, _) = alpaca_get(
        &sim,
        &format!("/v2/stocks/quotes/latest?symbols={}", many.join(",")),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn alpaca_data_stream_authenticates_subscribes_and_sends_quote_arrays() {
    let sim = alpaca_sim().await;
    let insts = assets(&sim, 4).await;
    let syms: Vec<String> = insts.iter().map(|(s, _, _)| s.clone()).collect();
    let mut ws = connect_data(&sim).await;
    // Nothing before authenticating.
    send(&mut ws, json!({"action":"subscribe","quotes":[syms[0]]})).await;
    assert_eq!(
        next(&mut ws).await,
        json!([{"T":"error","code":401,"msg":"not authenticated"}])
    );
    send(&mut ws, json!({"action":"auth","key":KEY,"secret":KEY})).await;
    assert_eq!(
        next(&mut ws).await,
        json!([{"T":"success","msg":"authenticated"}])
    );
    send(
        &mut ws,
        json!({"action":"subscribe","quotes":[syms[0], syms[1]],"trades":[syms[0]]}),
    )
    .await;
    let ack = next(&mut ws).await;
    assert_eq!(ack[0]["T"], "subscription");
    assert_eq!(ack[0]["quotes"], json!([syms[0], syms[1]]));
    assert_eq!(ack[0]["trades"], json!([syms[0]]));
    assert_eq!(ack[0]["bars"], json!([]));
    assert_eq!(sim.stats().await.streams.quote_symbols, syms[..2].to_vec());

    // Beyond the limit (3): 405, and nothing added.
    send(
        &mut ws,
        json!({"action":"subscribe","quotes":[syms[2], syms[3]]}),
    )
    .await;
    let refusal = loop {
        let m = next(&mut ws).await;
        if m[0]["T"] != "q" {
            break m;
        }
    };
    assert_eq!(
        refusal,
        json!([{"T":"error","code":405,"msg":"symbol limit exceeded"}])
    );

    let window = collect(&mut ws, Duration::from_millis(1500)).await;
    let quotes: Vec<&Value> = window.iter().flat_map(|f| f.as_array().unwrap()).collect();
    assert!(quotes.iter().all(|q| q["T"] == "q"), "{window:?}");
    for sym in &syms[..2] {
        let n = quotes.iter().filter(|q| q["S"] == **sym).count();
        assert!((5..=25).contains(&n), "{sym}: {n} quotes in 1.5 s");
    }
    let q = quotes[0];
    for field in ["bp", "bs", "ap", "as"] {
        assert!(q[field].is_number(), "{field} in {q}");
    }
    assert!(dec(&q["bp"]) < dec(&q["ap"]));
    assert!(q["t"].is_string() && q["c"].is_array());

    send(&mut ws, json!({"action":"unsubscribe","quotes":[syms[0]]})).await;
    let ack = loop {
        let m = next(&mut ws).await;
        if m[0]["T"] == "subscription" {
            break m;
        }
    };
    assert_eq!(ack[0]["quotes"], json!([syms[1]]));
    assert_eq!(
        sim.stats().await.streams.quote_symbols,
        vec![syms[1].clone()]
    );
}

#[tokio::test]
async fn alpaca_data_stream_refuses_bad_credentials_a_second_connection_and_the_otc_feed() {
    let sim = alpaca_sim().await;
    let mut bad = connect_data(&sim).await;
    send(
        &mut bad,
        json!({"action":"auth","key":KEY,"secret":"wrong"}),
    )
    .await;
    assert_eq!(
        next(&mut bad).await,
        json!([{"T":"error","code":402,"msg":"auth failed"}])
    );

    let mut first = connect_data(&sim).await;
    send(&mut first, json!({"action":"auth","key":KEY,"secret":KEY})).await;
    assert_eq!(next(&mut first).await[0]["msg"], "authenticated");
    let mut second = connect_data(&sim).await;
    send(&mut second, json!({"action":"auth","key":KEY,"secret":KEY})).await;
    assert_eq!(
        next(&mut second).await,
        json!([{"T":"error","code":406,"msg":"connection limit exceeded"}])
    );
    let stats = sim.stats().await.streams;
    assert_eq!(
        (stats.data_opened, stats.data_open, stats.data_refused),
        (1, 1, 1)
    );
    assert_eq!(stats.opened, 0, "the order stream's counters are apart");
    // A second auth on the held connection is 403, and it stays usable.
    send(&mut first, json!({"action":"auth","key":KEY,"secret":KEY})).await;
    assert_eq!(next(&mut first).await[0]["code"], 403);
    send(&mut first, json!("not a message")).await;
    assert_eq!(next(&mut first).await[0]["code"], 400);

    let mut otc = tokio_tungstenite::connect_async(ws_url(&sim, "/v2/otc"))
        .await
        .unwrap()
        .0;
    assert_eq!(next(&mut otc).await[0]["msg"], "connected");
    send(
        &mut otc,
        json!({"action":"auth","key":"other-key","secret":"other-key"}),
    )
    .await;
    assert_eq!(
        next(&mut otc).await,
        json!([{"T":"error","code":409,"msg":"insufficient subscription"}])
    );
}
