//! The stream under faults: messages lost, duplicated and delayed, connections
//! dropped, while orders are placed, filled and canceled. Every subscriber must end
//! with the broker's state of every order, having never seen an order go back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{stream_up, SUBMIT, UPDATES};
use crate::common::ws::{Incoming, PATIENCE};
use crate::common::{self, TestApp};

/// One subscriber's view: each order as the last event showed it, and what it saw.
#[derive(Default)]
struct View {
    orders: HashMap<String, (String, f64)>,
    went_back: Vec<String>,
    reconciled: usize,
    resyncs: usize,
}

impl View {
    fn apply(&mut self, update: &Value) {
        let order = &update["order"];
        let id = order["brokerOrderId"].as_str().unwrap().to_string();
        let status = order["status"].as_str().unwrap().to_string();
        let filled: f64 = order["filledQuantity"].as_str().unwrap().parse().unwrap();
        if let Some((was, was_filled)) = self.orders.get(&id) {
            let finished = |s: &str| matches!(s, "FILLED" | "CANCELED" | "EXPIRED" | "REJECTED");
            if filled < *was_filled || (finished(was) && !finished(&status)) {
                self.went_back
                    .push(format!("{id}: {was} {was_filled} -> {status} {filled}"));
            }
        }
        self.reconciled += usize::from(update["event"] == "RECONCILED");
        self.resyncs += usize::from(update["resync"] == true);
        self.orders.insert(id, (status, filled));
    }
}

/// Places an order; `None` when refused (buying power runs out as the test goes).
async fn place(
    app: &TestApp,
    symbol: &str,
    kind: &str,
    qty: &str,
    limit: Option<&str>,
) -> Option<String> {
    let input = json!({
        "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol, "side": "BUY",
        "type": kind, "quantity": qty, "limitPrice": limit,
    });
    let data = app.data(SUBMIT, json!({ "input": input })).await;
    data["submitOrder"]["order"]["id"]
        .as_str()
        .map(str::to_string)
}

/// The broker's own state of every order, over its REST API.
async fn broker_orders(app: &TestApp) -> HashMap<String, (String, f64)> {
    let mut all = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/orders?status=all&limit=100".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.broker_get(&path).await;
        for o in page["data"].as_array().unwrap() {
            let status = o["status"].as_str().unwrap().to_uppercase();
            let filled: f64 = o["filled_quantity"].as_str().unwrap().parse().unwrap();
            all.insert(o["id"].as_str().unwrap().to_string(), (status, filled));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_end_with_the_brokers_state_through_lost_duplicated_and_dropped_messages() {
    let app = common::spawn_app().await;
    let views: Vec<Arc<Mutex<View>>> = (0..3).map(|_| Arc::default()).collect();
    let mut readers = Vec::new();
    for view in &views {
        let mut ws = app.ws().await;
        ws.subscribe(UPDATES, json!({})).await;
        let view = view.clone();
        readers.push(tokio::spawn(async move {
            loop {
                match ws.next_within(Duration::from_secs(3600)).await {
                    Some(Incoming::Next { payload, .. }) => {
                        view.lock().unwrap().apply(&payload["data"]["orderUpdates"])
                    }
                    other => panic!("{other:?}"),
                }
            }
        }));
    }
    stream_up(&app).await;
    app.sim
        .set_faults(json!({ "seed": 11, "rules": [
            { "route": "GET /v1/stream", "kind": "stream_lose", "rate": 0.2 },
            { "route": "GET /v1/stream", "kind": "stream_duplicate", "rate": 0.1 },
            { "route": "GET /v1/stream", "kind": "stream_delay", "ms": 30, "rate": 0.1 },
            { "route": "GET /v1/stream", "kind": "stream_drop", "rate": 0.04 },
        ]}))
        .await;

    let instruments = app.tradable_instruments().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut resting: Vec<String> = Vec::new();
    let cancel =
        "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { userErrors { code } } }";
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        let (symbol, lot) = &instruments[rng.gen_range(0..8)];
        match rng.gen_range(0..10) {
            0..=3 => {
                place(&app, symbol, "MARKET", lot, None).await;
            }
            4..=6 => {
                app.sim.set_price(symbol, "100.00").await;
                resting.extend(place(&app, symbol, "LIMIT", lot, Some("99.00")).await);
            }
            7 if !resting.is_empty() => {
                let id = resting.swap_remove(rng.gen_range(0..resting.len()));
                app.data(cancel, json!({ "id": id })).await;
            }
            _ => {
                // Crossing resting limits: fills on the next tick.
                app.sim.set_price(symbol, "98.00").await;
                app.sim.tick(1).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.sim.clear_faults().await;
    // The last lost message is only noticed by the next one (or a reconnect):
    // drop once more, as the faults did every few seconds.
    app.sim.drop_streams().await;

    let broker = broker_orders(&app).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let settled = views.iter().all(|v| {
            broker
                .iter()
                .all(|(id, state)| v.lock().unwrap().orders.get(id) == Some(state))
        });
        if settled {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            for (i, v) in views.iter().enumerate() {
                let v = v.lock().unwrap();
                let wrong: Vec<_> = broker
                    .iter()
                    .filter(|(id, s)| v.orders.get(*id) != Some(*s))
                    .map(|(id, s)| format!("{id}: broker {s:?}, view {:?}", v.orders.get(id)))
                    .collect();
                eprintln!(
                    "subscriber {i}: {} of {} wrong: {wrong:#?}",
                    wrong.len(),
                    broker.len()
                );
            }
            panic!("subscribers never caught up with the broker");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let streams = app.sim.stats().await.streams;
    assert!(
        streams.lost > 0 && streams.opened > 2,
        "the faults happened: {streams:?}"
    );
    for view in &views {
        let view = view.lock().unwrap();
        assert_eq!(view.went_back, Vec::<String>::new(), "an order went back");
        assert!(
            view.reconciled + view.resyncs > 0,
            "lost messages were made up for by RECONCILED (or flagged by resync)"
        );
    }
    assert!(
        broker.len() > 20,
        "enough activity: {} orders",
        broker.len()
    );
    for reader in readers {
        reader.abort();
    }
}
