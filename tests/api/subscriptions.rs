//! Live order updates end to end: graphql-transport-ws clients on the gateway, the
//! gateway on broker-sim's order stream, orders placed through the gateway.

use std::collections::HashMap;
use std::time::Duration;

use broker_sim::Dialect;
use serde_json::{json, Value};

use crate::common::ws::{Incoming, WsClient, PATIENCE};
use crate::common::{self, AppOptions, TestApp};

mod faults;

pub(super) const UPDATES: &str = "subscription($after: String) { orderUpdates(after: $after) { \
    cursor event brokerEvent resync at positionQuantity \
    fill { executionId price quantity } \
    order { id brokerOrderId symbol status quantity filledQuantity averageFillPrice updatedAt } } }";

const ORDER: &str = "query($id: ID!) { order(id: $id) { \
    id brokerOrderId symbol status quantity filledQuantity averageFillPrice updatedAt } }";

pub(super) const SUBMIT: &str =
    "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { \
    order { id brokerOrderId } userErrors { code message } } }";

/// Waits until broker-sim has `n` stream connections open: the gateway's upstream.
async fn upstreams_open(app: &TestApp, n: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while app.sim.stats().await.streams.open != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker stream connections: {:?}, expected {n} open",
            app.sim.stats().await.streams
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the gateway's `/metrics` has `line`.
async fn metric(app: &TestApp, line: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !app.metrics().await.contains(line) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw `{line}` in /metrics"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the gateway says its order stream is subscribed and reconciled.
pub(super) async fn stream_up(app: &TestApp) {
    metric(app, "brokergraph_order_stream_up{account=\"default\"} 1").await;
}

/// A subscriber whose upstream is up, so it misses nothing placed after this.
async fn subscriber(app: &TestApp) -> (WsClient, String) {
    let mut ws = app.ws().await;
    let id = ws.subscribe(UPDATES, json!({})).await;
    stream_up(app).await;
    (ws, id)
}

async fn submit(
    app: &TestApp,
    symbol: &str,
    side: &str,
    kind: &str,
    qty: &str,
    limit: Option<&str>,
) -> String {
    let input = json!({
        "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol, "side": side,
        "type": kind, "quantity": qty, "limitPrice": limit,
    });
    let data = app.data(SUBMIT, json!({ "input": input })).await;
    assert_eq!(data["submitOrder"]["userErrors"], json!([]), "{data:#}");
    data["submitOrder"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The updates for order `id` until one in a terminal status, with the order as
/// the gateway answers right after each arrived.
async fn follow(app: &TestApp, ws: &mut WsClient, id: &str) -> Vec<(Value, Value)> {
    let mut seen = Vec::new();
    loop {
        let update = ws.next_data().await["orderUpdates"].clone();
        if update["order"]["id"] != id {
            continue;
        }
        let now = app.data(ORDER, json!({ "id": id })).await["order"].clone();
        let done = matches!(
            update["order"]["status"].as_str(),
            Some("FILLED" | "CANCELED" | "EXPIRED" | "REJECTED")
        );
        seen.push((update, now));
        if done {
            return seen;
        }
    }
}

/// The market moves on while the test reads, as `POST /sim/tick` makes it (Alpaca
/// routes a new order, and so fills it, on a later tick).
fn ticking(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let (http, url) = (app.http.clone(), format!("{}/sim/tick", app.sim.base_url()));
    tokio::spawn(async move {
        loop {
            let _ = http.post(&url).bearer_auth(common::ADMIN).send().await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

async fn market_order_is_new_then_fill_and_queries_agree(dialect: Dialect) {
    let app = common::spawn_app_in(dialect).await;
    let (mut ws, _) = subscriber(&app).await;
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    let id = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;

    let ticker = ticking(&app);
    let seen = follow(&app, &mut ws, &id).await;
    ticker.abort();
    let events: Vec<&str> = seen
        .iter()
        .map(|(u, _)| u["event"].as_str().unwrap())
        .collect();
    // Alpaca announces `pending_new` (OTHER, under its own name) before `new`.
    let new = events
        .iter()
        .position(|e| *e == "NEW")
        .expect("a NEW event");
    assert!(events[..new].iter().all(|e| *e == "OTHER"), "{events:?}");
    assert_eq!(events.last(), Some(&"FILL"), "{seen:#?}");
    let (fill, after_fill) = seen.last().unwrap();
    assert_eq!(fill["fill"]["quantity"], json!(lot), "{fill:#}");
    assert!(fill["positionQuantity"].is_string(), "{fill:#}");
    // The freshness contract: a query sent after the event answers that state.
    assert_eq!(
        &fill["order"], after_fill,
        "the event and order(id:) right after it"
    );
    assert_eq!(after_fill["status"], "FILLED");
    assert!(seen.iter().all(|(u, _)| u["resync"] == false));
}

async fn a_large_order_fills_in_parts(dialect: Dialect) {
    let app = common::spawn_app_in(dialect).await;
    let (mut ws, _) = subscriber(&app).await;
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    app.sim.set_price(&symbol, "100.00").await;
    // 250 000 USD of liquidity per tick at 100.00: this needs several ticks.
    let lots: u64 = 6_000 / lot.parse::<u64>().unwrap();
    let qty = (lots * lot.parse::<u64>().unwrap()).to_string();
    let id = submit(&app, &symbol, "BUY", "MARKET", &qty, None).await;
    let ticker = ticking(&app);
    let seen = follow(&app, &mut ws, &id).await;
    ticker.abort();
    let events: Vec<&str> = seen
        .iter()
        .map(|(u, _)| u["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"NEW"), "{events:?}");
    assert!(
        events.iter().filter(|e| **e == "PARTIAL_FILL").count() >= 1,
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&"FILL"), "{events:?}");
    let filled: Vec<f64> = seen
        .iter()
        .map(|(u, _)| {
            u["order"]["filledQuantity"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        filled.windows(2).all(|w| w[0] <= w[1]),
        "filled never goes back: {filled:?}"
    );
    assert_eq!(seen.last().unwrap().0["order"], seen.last().unwrap().1);
}

async fn a_canceled_order_is_announced(dialect: Dialect) {
    let app = common::spawn_app_in(dialect).await;
    let (mut ws, _) = subscriber(&app).await;
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    app.sim.set_price(&symbol, "100.00").await;
    let id = submit(&app, &symbol, "BUY", "LIMIT", &lot, Some("50.00")).await;
    let cancel =
        "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { userErrors { code } } }";
    let data = app.data(cancel, json!({ "id": id })).await;
    assert_eq!(data["cancelOrder"]["userErrors"], json!([]), "{data:#}");
    let seen = follow(&app, &mut ws, &id).await;
    let (update, now) = seen.last().unwrap();
    assert_eq!(update["event"], "CANCELED");
    assert_eq!(&update["order"], now);
}

crate::in_both_dialects!(
    market_order_is_new_then_fill_and_queries_agree,
    a_large_order_fills_in_parts,
    a_canceled_order_is_announced,
);

#[tokio::test]
async fn many_subscribers_share_one_upstream_which_closes_after_the_linger() {
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| c.subscriptions.linger = Duration::from_millis(300),
        ..AppOptions::default()
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut ws = app.ws().await;
        for _ in 0..10 {
            ws.subscribe(UPDATES, json!({})).await;
        }
        clients.push(ws);
    }
    stream_up(&app).await;
    metric(
        &app,
        "brokergraph_order_subscriptions{account=\"default\"} 200",
    )
    .await;
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    let id = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
    for ws in &mut clients {
        let mut got = HashMap::new();
        while got.len() < 10 {
            match ws.next().await {
                Incoming::Next { id: sub, payload } => {
                    let update = &payload["data"]["orderUpdates"];
                    if update["order"]["id"] == id.as_str() && update["event"] == "FILL" {
                        got.insert(sub, ());
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let streams = app.sim.stats().await.streams;
    assert_eq!(
        streams.opened, 1,
        "200 subscribers, one upstream: {streams:?}"
    );
    drop(clients);
    upstreams_open(&app, 0).await;
}

#[tokio::test]
async fn after_replays_exactly_what_a_reconnecting_client_missed() {
    let app = common::spawn_app().await;
    let (mut ws, _) = subscriber(&app).await;
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    let first = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
    let seen = follow(&app, &mut ws, &first).await;
    let cursor = seen.last().unwrap().0["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    drop(ws);

    // Missed while away; another subscriber keeps the upstream (and history) going.
    let (mut witness, _) = subscriber(&app).await;
    let second = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
    let missed: Vec<Value> = follow(&app, &mut witness, &second)
        .await
        .into_iter()
        .map(|(u, _)| u)
        .collect();

    let mut back = app.ws().await;
    back.subscribe(UPDATES, json!({ "after": cursor })).await;
    for expected in &missed {
        let replayed = back.next_data().await["orderUpdates"].clone();
        assert_eq!(&replayed, expected);
    }
    assert!(
        back.next_within(Duration::from_millis(300)).await.is_none(),
        "nothing beyond what was missed"
    );
}

#[tokio::test]
async fn a_cursor_older_than_the_history_starts_with_resync() {
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| c.subscriptions.history = 2,
        ..AppOptions::default()
    })
    .await;
    let (mut ws, _) = subscriber(&app).await;
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    let first = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
    let cursor = follow(&app, &mut ws, &first).await[0].0["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let id = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
        follow(&app, &mut ws, &id).await;
    }
    let mut back = app.ws().await;
    back.subscribe(UPDATES, json!({ "after": cursor })).await;
    let id = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
    let next = back.next_data().await["orderUpdates"].clone();
    assert_eq!(next["resync"], true, "{next:#}");
    assert_eq!(next["order"]["id"], id);
}

#[tokio::test]
async fn a_garbage_or_foreign_cursor_is_bad_user_input() {
    let app = common::spawn_app().await;
    let page = app
        .data("{ instruments(first: 1) { edges { cursor } } }", json!({}))
        .await;
    let foreign = page["instruments"]["edges"][0]["cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = app.ws().await;
    for after in ["garbage", foreign.as_str()] {
        let id = ws.subscribe(UPDATES, json!({ "after": after })).await;
        match ws.next().await {
            Incoming::Error { id: got, payload } => {
                assert_eq!(got, id);
                assert_eq!(
                    payload[0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{payload:#}"
                );
            }
            Incoming::Next { id: got, payload } => {
                assert_eq!(got, id);
                assert_eq!(
                    payload["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{payload:#}"
                );
                assert!(matches!(ws.next().await, Incoming::Complete));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        app.sim.stats().await.streams.opened,
        0,
        "nothing subscribed upstream"
    );
}

/// The broker allows one stream per key: while another client holds it, the gateway
/// keeps retrying, and its subscribers get the events once it has the stream.
#[tokio::test]
async fn the_gateway_waits_out_a_broker_that_refuses_a_second_stream() {
    let app = common::spawn_app().await;
    let url = app.sim.base_url().replace("http://", "ws://") + "/v1/stream";
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", common::SIM_KEY).parse().unwrap(),
    );
    let (squatter, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    upstreams_open(&app, 1).await;

    let mut ws = app.ws().await;
    ws.subscribe(UPDATES, json!({})).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while app.sim.stats().await.streams.refused == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the gateway tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Placed while the gateway has no stream: it learns of it by its own stream
    // (FILL) or, if it connects after the fill, by reconciling (RECONCILED).
    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    let id = submit(&app, &symbol, "BUY", "MARKET", &lot, None).await;
    drop(squatter);
    let seen = follow(&app, &mut ws, &id).await;
    let (last, now) = seen.last().unwrap();
    assert_eq!(last["order"]["status"], "FILLED", "{seen:#?}");
    assert_eq!(&last["order"], now);
}
