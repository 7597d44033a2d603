//! Subscriptions across replicas: one upstream stream per broker credential
//! whichever replica the subscribers are on, every subscriber gets every event
//! in the same order, a killed holder is replaced, cursors resume on any replica,
//! and a Redis outage is announced with `resync` rather than a crash or a repeat.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::cluster::{Cluster, Env};
use crate::common::ws::{Incoming, WsClient, PATIENCE};
use crate::helpers::{buy, cheap_symbol, SUBMIT};

const UPDATES: &str = "subscription($after: String) { orderUpdates(after: $after) { \
    cursor event brokerEvent resync fill { executionId } \
    order { id brokerOrderId status filledQuantity } } }";

const ORDER: &str = "query($id: ID!) { order(id: $id) { id status filledQuantity } }";

/// A short lease, so a takeover in the tests takes about a second.
const STREAMS: Env = &[
    ("SUBSCRIPTIONS_LEASE_MS", "1500"),
    ("SUBSCRIPTIONS_LINGER_MS", "500"),
];

/// One delivered `orderUpdates` payload.
#[derive(Clone, Debug, PartialEq)]
struct Update {
    cursor: String,
    event: String,
    /// The broker's id: orders placed at the broker directly have no other.
    order: String,
    /// The gateway's id, for `order(id:)`.
    gid: String,
    status: String,
    filled: String,
    execution: Option<String>,
    resync: bool,
}

impl Update {
    fn of(data: &Value) -> Update {
        let u = &data["orderUpdates"];
        Update {
            cursor: u["cursor"].as_str().unwrap().to_string(),
            event: u["event"].as_str().unwrap().to_string(),
            order: u["order"]["brokerOrderId"].as_str().unwrap().to_string(),
            gid: u["order"]["id"].as_str().unwrap().to_string(),
            status: u["order"]["status"].as_str().unwrap().to_string(),
            filled: u["order"]["filledQuantity"].as_str().unwrap().to_string(),
            execution: u["fill"]["executionId"].as_str().map(str::to_string),
            resync: u["resync"].as_bool().unwrap(),
        }
    }
}

async fn subscribe(cluster: &Cluster, replica: usize, after: Option<&str>) -> WsClient {
    let mut ws = WsClient::connect(cluster.replicas[replica].addr, None).await;
    ws.subscribe(UPDATES, json!({ "after": after })).await;
    ws
}

/// Reads updates until `done` says the list is complete.
async fn collect(ws: &mut WsClient, done: impl Fn(&[Update]) -> bool) -> Vec<Update> {
    let mut seen = Vec::new();
    while !done(&seen) {
        match ws.next().await {
            Incoming::Next { payload, .. } => {
                assert!(payload.get("errors").is_none(), "{payload:#}");
                seen.push(Update::of(&payload["data"]));
            }
            other => panic!("expected an update, got {other:?}"),
        }
    }
    seen
}

/// Whether every order of `ids` was seen filled.
fn filled(ids: &[String]) -> impl Fn(&[Update]) -> bool + '_ {
    move |seen| {
        ids.iter()
            .all(|id| seen.iter().any(|u| &u.order == id && u.status == "FILLED"))
    }
}

/// Waits until one of the replicas says its order stream is subscribed and
/// reconciled; returns which.
async fn holder(cluster: &mut Cluster) -> usize {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        for i in 0..cluster.replicas.len() {
            if cluster.replicas[i].alive()
                && cluster
                    .metrics(i)
                    .await
                    .contains("brokergraph_order_stream_up 1")
            {
                return i;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica holds the order stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn market_buy(cluster: &Cluster, replica: usize, symbol: &str) -> String {
    let data = cluster
        .data(replica, SUBMIT, buy(Uuid::new_v4(), symbol, "MARKET"))
        .await;
    assert_eq!(data["submitOrder"]["userErrors"], json!([]), "{data:#}");
    data["submitOrder"]["order"]["brokerOrderId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_of_subscribers_share_one_upstream_and_see_every_event_in_order() {
    let mut cluster = Cluster::default(STREAMS).await;
    let symbol = cheap_symbol(&cluster).await;
    let mut sockets = Vec::new();
    for replica in 0..3 {
        for _ in 0..100 {
            sockets.push(subscribe(&cluster, replica, None).await);
        }
    }
    holder(&mut cluster).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(market_buy(&cluster, i % 3, &symbol).await);
    }
    let readers = sockets.into_iter().map(|mut ws| {
        let ids = ids.clone();
        tokio::spawn(async move { collect(&mut ws, filled(&ids)).await })
    });
    let seen: Vec<Vec<Update>> = futures::future::join_all(readers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let streams = cluster.sim.stats().await.streams;
    assert_eq!(
        (streams.opened, streams.refused),
        (1, 0),
        "one upstream connection for 300 subscribers on three replicas: {streams:?}"
    );
    let first = &seen[0];
    for id in &ids {
        let events: Vec<&str> = first
            .iter()
            .filter(|u| &u.order == id)
            .map(|u| u.event.as_str())
            .collect();
        assert_eq!(events.first(), Some(&"NEW"), "{id}: {events:?}");
        assert_eq!(events.last(), Some(&"FILL"), "{id}: {events:?}");
    }
    for (i, other) in seen.iter().enumerate() {
        assert_eq!(
            other,
            first,
            "subscriber {i} (replica {}) saw another sequence",
            i / 100
        );
    }
    let cursors: HashSet<&str> = first.iter().map(|u| u.cursor.as_str()).collect();
    assert_eq!(cursors.len(), first.len(), "a cursor per event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_holder_is_replaced_and_cursors_resume_on_another_replica() {
    let mut cluster = Cluster::default(STREAMS).await;
    let symbol = cheap_symbol(&cluster).await;
    let mut watchers = Vec::new();
    for replica in 0..3 {
        watchers.push((replica, subscribe(&cluster, replica, None).await));
    }
    let dead = holder(&mut cluster).await;
    let alive = (dead + 1) % 3;
    let mut before = Vec::new();
    for _ in 0..3 {
        before.push(market_buy(&cluster, alive, &symbol).await);
    }
    // The subscriber on the holder reads what it got before the holder dies.
    let (_, mut doomed) = watchers.remove(dead);
    let got = collect(&mut doomed, filled(&before)).await;
    let last = got.last().unwrap().cursor.clone();

    cluster.kill(dead);
    let mut after = Vec::new();
    for _ in 0..3 {
        after.push(market_buy(&cluster, alive, &symbol).await);
    }
    // Orders at the broker directly: only the stream (or the reconcile) tells.
    for _ in 0..2 {
        after.push(cluster.broker_buy(&symbol).await);
    }
    let every: Vec<String> = before.iter().chain(&after).cloned().collect();
    let mut seen = Vec::new();
    for (replica, mut ws) in watchers {
        seen.push((replica, collect(&mut ws, filled(&every)).await));
    }
    let new_holder = holder(&mut cluster).await;
    assert_ne!(new_holder, dead);
    assert!(
        cluster.sim.stats().await.streams.opened >= 2,
        "a second upstream after the kill"
    );

    // Every surviving subscriber ends where the broker is.
    for (replica, updates) in &seen {
        let mut last_seen: HashMap<&str, &Update> = HashMap::new();
        for u in updates {
            last_seen.insert(&u.order, u);
        }
        for id in &every {
            let u = last_seen[id.as_str()];
            let rest = cluster.data(*replica, ORDER, json!({ "id": u.gid })).await;
            assert_eq!(
                (u.status.as_str(), u.filled.as_str()),
                (
                    rest["order"]["status"].as_str().unwrap(),
                    rest["order"]["filledQuantity"].as_str().unwrap()
                ),
                "replica {replica}, order {id}"
            );
        }
        let cursors: HashSet<&str> = updates.iter().map(|u| u.cursor.as_str()).collect();
        assert_eq!(
            cursors.len(),
            updates.len(),
            "no event twice on replica {replica}"
        );
    }

    // The client of the dead replica reconnects elsewhere with its last cursor and
    // gets exactly what a subscriber that stayed got after it.
    let (replica, stayed) = &seen[0];
    let missed: Vec<Update> = stayed
        .iter()
        .skip_while(|u| u.cursor != last)
        .skip(1)
        .cloned()
        .collect();
    assert!(!missed.is_empty());
    let mut back = subscribe(&cluster, *replica, Some(&last)).await;
    let n = missed.len();
    let resumed = collect(&mut back, |seen| seen.len() == n).await;
    assert_eq!(resumed, missed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_mid_stream_is_announced_with_resync_and_nothing_repeats() {
    let mut cluster = Cluster::default(STREAMS).await;
    let symbol = cheap_symbol(&cluster).await;
    let mut watchers = Vec::new();
    for replica in 0..3 {
        watchers.push(subscribe(&cluster, replica, None).await);
    }
    holder(&mut cluster).await;
    let first = market_buy(&cluster, 0, &symbol).await;
    let mut first_gid = String::new();
    for ws in &mut watchers {
        let seen = collect(ws, filled(std::slice::from_ref(&first))).await;
        first_gid = seen.last().unwrap().gid.clone();
    }

    cluster.redis.pause();
    // Submits need the idempotency store (Redis): orders go to the broker directly.
    let mut during = Vec::new();
    for _ in 0..2 {
        during.push(cluster.broker_buy(&symbol).await);
    }
    // Reads keep answering while Redis hangs.
    let answer = cluster.graphql(1, ORDER, json!({ "id": first_gid })).await;
    assert_eq!(answer["data"]["order"]["status"], "FILLED", "{answer:#}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.redis.resume();

    let later = market_buy(&cluster, 2, &symbol).await;
    let mut every = during.clone();
    every.push(later);
    for (replica, ws) in watchers.iter_mut().enumerate() {
        let updates = collect(ws, filled(&every)).await;
        assert!(
            updates.first().is_some_and(|u| u.resync),
            "replica {replica}: the first update after the outage carries resync: {updates:#?}"
        );
        let mut keys = HashSet::new();
        for u in &updates {
            let key = (&u.order, &u.event, &u.status, &u.filled, &u.execution);
            assert!(keys.insert(key), "replica {replica}: {u:?} delivered twice");
        }
    }
    for i in 0..3 {
        let (status, _) = cluster.readyz(i).await;
        assert_eq!(status, 200, "replica {i} is ready again");
    }
}

const QUOTES: &str =
    "subscription($symbols: [String!]!) { quotes(symbols: $symbols) { symbol bid ask } }";

/// The symbols the sim streams to the gateways, once they equal `want`.
async fn upstream_symbols(cluster: &Cluster, want: &BTreeSet<String>) {
    let want: Vec<String> = want.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let streams = cluster.sim.stats().await.streams;
        if streams.quote_symbols == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream symbols {:?}, expected {want:?}",
            streams.quote_symbols
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The symbols of the first quote of each of `n` symbols a socket receives.
async fn quoted(ws: &mut WsClient, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        match ws.next().await {
            Incoming::Next { payload, .. } => {
                assert!(payload.get("errors").is_none(), "{payload:#}");
                seen.insert(
                    payload["data"]["quotes"]["symbol"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            other => panic!("expected a quote, got {other:?}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quote_subscribers_on_three_replicas_share_one_upstream_with_exactly_the_union() {
    let cluster = Cluster::default(STREAMS).await;
    let listed = cluster
        .data(
            0,
            "{ instruments(first: 40) { nodes { symbol } } }",
            json!({}),
        )
        .await;
    let symbols: Vec<String> = listed["instruments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["symbol"].as_str().unwrap().to_string())
        .collect();
    // Overlapping sets: 0..12 on replica 0, 8..20 on 1, 16..24 on 2.
    let sets = [&symbols[0..12], &symbols[8..20], &symbols[16..24]];
    let mut sockets = Vec::new();
    for (replica, set) in sets.iter().enumerate() {
        let mut ws = WsClient::connect(cluster.replicas[replica].addr, None).await;
        ws.subscribe(QUOTES, json!({ "symbols": set })).await;
        sockets.push(ws);
    }
    let union: BTreeSet<String> = symbols[0..24].iter().cloned().collect();
    upstream_symbols(&cluster, &union).await;
    for (i, ws) in sockets.iter_mut().enumerate() {
        let got = quoted(ws, sets[i].len()).await;
        let want: BTreeSet<String> = sets[i].iter().cloned().collect();
        assert_eq!(got, want, "replica {i} gets quotes of exactly its symbols");
    }
    let streams = cluster.sim.stats().await.streams;
    assert_eq!(
        (streams.opened, streams.refused),
        (1, 0),
        "one upstream connection for the three replicas: {streams:?}"
    );

    // The limit (30) counts across replicas: 6 more fit, the 7th does not.
    let mut more = WsClient::connect(cluster.replicas[1].addr, None).await;
    more.subscribe(QUOTES, json!({ "symbols": symbols[24..30] }))
        .await;
    quoted(&mut more, 6).await;
    let mut over = WsClient::connect(cluster.replicas[2].addr, None).await;
    over.subscribe(QUOTES, json!({ "symbols": [symbols[30]] }))
        .await;
    match over.next().await {
        Incoming::Next { payload, .. } | Incoming::Error { payload, .. } => {
            let text = payload.to_string();
            assert!(
                text.contains("QUERY_TOO_COMPLEX") && text.contains("at most 30"),
                "{text}"
            );
        }
        other => panic!("expected the refusal, got {other:?}"),
    }

    // Replica 0's subscriber leaves: after the linger its symbols that nobody
    // else watches leave the upstream set, on the same connection.
    drop(sockets.remove(0));
    let rest: BTreeSet<String> = symbols[8..30].iter().cloned().collect();
    upstream_symbols(&cluster, &rest).await;
    assert_eq!(cluster.sim.stats().await.streams.opened, 1);
}
