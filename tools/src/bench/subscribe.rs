//! `subscribe`: many graphql-transport-ws clients on one account, fed by the one
//! broker stream the gateway holds for it.
//!
//! The gateway runs as its own process (`brokergraph` next to the `bench` binary,
//! i.e. `target/release/brokergraph`) in front of the in-process broker-sim, so its
//! VmRSS is the gateway's alone; without that binary the in-process gateway is used
//! and the row says that the RSS includes the clients. Then: delivery latency of
//! order events (client receive time − the broker's `at`, one clock), and broker REST
//! calls per 1000 dashboard queries with the order stream up and down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::load::graphql_errors;
use super::scenarios::{dashboard_load, run};
use super::setup::{self, Stack, SIM_KEY};
use super::{Args, Row};

const UPDATES: &str =
    "subscription { orderUpdates { cursor event order { id status filledQuantity } at } }";
/// Subscriptions per WebSocket.
const PER_CONNECTION: usize = 5;
/// Market orders per second at the broker: each is NEW then FILL, so twice as many events.
const ORDERS_PER_SEC: u64 = 5;
/// Sockets opened at once, so the listen backlog never overflows.
const OPEN_BATCH: usize = 100;

pub(super) struct GatewayProcess(pub Child);

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the clients count, shared by all their tasks.
#[derive(Default)]
struct Counts {
    /// Connections acknowledged with their subscriptions sent.
    ready: AtomicU64,
    /// Connections that failed before that.
    failed: AtomicU64,
    /// `next` messages carrying an `at`.
    delivered: AtomicU64,
    /// `next` messages without one (errors), `error`, `complete`, closes.
    bad: AtomicU64,
}

/// VmRSS of process `pid`, KiB.
pub(super) fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// User + system CPU time of process `pid` so far, seconds (at 100 ticks a second).
pub(super) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Sockets for `n` clients (plus the gateway's side when it is in this process).
pub(super) fn raise_file_limit(n: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let want = (2 * n + 1024) as u64;
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|c| c < want) {
        let mut raised = limit;
        raised.current = Some(limit.maximum.map_or(want, |max| max.min(want)));
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            eprintln!(
                "subscribe: could not raise the file limit ({e}); `ulimit -n` may be too low"
            );
        }
    }
}

pub(super) fn gateway_binary() -> Option<PathBuf> {
    let bin = std::env::current_exe().ok()?.with_file_name("brokergraph");
    bin.is_file().then_some(bin)
}

pub(super) async fn spawn_gateway(
    bin: &Path,
    broker_url: &str,
    max_connections: usize,
) -> Option<(GatewayProcess, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let child = Command::new(bin)
        .args(["--listen", &addr.to_string(), "--broker-url", broker_url])
        .env("BROKERGRAPH_BROKER_API_KEY", SIM_KEY)
        .env(
            "BROKERGRAPH_SUBSCRIPTIONS_MAX_CONNECTIONS_PER_KEY",
            max_connections.to_string(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let process = GatewayProcess(child);
    let http = reqwest::Client::new();
    for _ in 0..500 {
        let ok = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Some((process, addr));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The sum of the samples of `name` (all label sets) on the gateway's `/metrics`.
pub(super) async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return f64::NAN;
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the gateway has `subscriptions` order subscriptions and its stream is up.
async fn wait_subscribed(addr: SocketAddr, subscriptions: usize, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if metric(addr, "brokergraph_order_subscriptions").await == subscriptions as f64
            && metric(addr, "brokergraph_order_stream_up").await == 1.0
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The `at` of an `orderUpdates` delivery, without parsing the whole message.
fn delivered_at(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let start = text.find("\"at\":\"")? + 6;
    let end = start + text[start..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&text[start..end])
        .ok()
        .map(|t| t.to_utc())
}

pub(super) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws socket to the gateway, acknowledged (no gateway keys).
pub(super) async fn connect_acked(addr: SocketAddr) -> Option<Socket> {
    let mut request = format!("ws://{addr}/graphql").into_client_request().ok()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.ok()?;
    let init = json!({ "type": "connection_init", "payload": {} }).to_string();
    ws.send(Message::text(init)).await.ok()?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("connection_ack") => return Some(ws),
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            _ => return None,
        }
    }
}

/// One graphql-transport-ws client with `subs` `orderUpdates` subscriptions; returns
/// the delivery latencies it saw (µs) once `stop` turns true.
async fn client(
    addr: SocketAddr,
    subs: usize,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let Some(mut ws) = connect_acked(addr).await else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        return latencies;
    };
    let mut acked = true;
    for id in 1..=subs {
        let subscribe = json!({ "id": id.to_string(), "type": "subscribe",
            "payload": { "query": UPDATES } });
        acked = acked && ws.send(Message::text(subscribe.to_string())).await.is_ok();
    }
    if !acked {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        return latencies;
    }
    counts.ready.fetch_add(1, Ordering::Relaxed);
    let pong = json!({ "type": "pong" }).to_string();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let now = chrono::Utc::now();
                    if let Some(at) = delivered_at(&text) {
                        let us = (now - at).num_microseconds().unwrap_or(0).max(0);
                        latencies.push(us.min(u32::MAX as i64) as u32);
                        counts.delivered.fetch_add(1, Ordering::Relaxed);
                    } else if text.contains("\"ping\"") {
                        if ws.send(Message::text(pong.clone())).await.is_err() {
                            counts.bad.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    } else if !text.contains("\"pong\"") {
                        counts.bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    counts.bad.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Some(Ok(_)) => {}
            }
        }
    }
    let _ = ws.close(None).await;
    latencies
}

/// `n` clients opened `OPEN_BATCH` at a time, each waited for before the next batch.
async fn open_clients(
    addr: SocketAddr,
    n: usize,
    subs: usize,
    counts: &Arc<Counts>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Vec<u32>>> {
    let mut handles = Vec::with_capacity(n);
    while handles.len() < n {
        let batch = OPEN_BATCH.min(n - handles.len());
        for _ in 0..batch {
            handles.push(tokio::spawn(client(
                addr,
                subs,
                counts.clone(),
                stop.clone(),
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while (counts.ready.load(Ordering::Relaxed) + counts.failed.load(Ordering::Relaxed))
            < handles.len() as u64
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    handles
}

pub(super) fn percentile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}

pub async fn subscribe(args: &Args) -> Vec<Row> {
    let n = args.ws_connections;
    let subscriptions = n * PER_CONNECTION;
    raise_file_limit(n);
    let stack = Stack::start(|_| {}, |c| c.subscriptions.max_connections_per_key = n + 16).await;
    let symbols = stack.cheap_symbols(5).await;
    let external = match gateway_binary() {
        Some(bin) => spawn_gateway(&bin, &stack.sim.base_url(), n + 16).await,
        None => None,
    };
    let (gateway, pid, separate) = match &external {
        Some((process, addr)) => (*addr, process.0.id(), true),
        None => (stack.gateway, std::process::id(), false),
    };
    // One query first, so the idle figure has the gateway's lazy state (broker
    // client, schema caches) in it, not in the per-connection share.
    let _ = reqwest::Client::new()
        .post(format!("http://{gateway}/graphql"))
        .header("content-type", "application/json")
        .body(setup::dashboard_body())
        .send()
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, bench_before) = (rss_kib(pid), rss_kib(std::process::id()));

    let counts = Arc::new(Counts::default());
    let (stop_tx, stop) = watch::channel(false);
    let opening = Instant::now();
    let handles = open_clients(gateway, n, PER_CONNECTION, &counts, &stop).await;
    let subscribed = wait_subscribed(gateway, subscriptions, Duration::from_secs(60)).await;
    let open_secs = opening.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, bench_after) = (rss_kib(pid), rss_kib(std::process::id()));
    let ready = counts.ready.load(Ordering::Relaxed);
    let per_connection_kib = (after - before) / ready.max(1) as f64;

    // Orders at the broker, `ORDERS_PER_SEC` a second.
    let drive = Duration::from_secs(2 * args.secs);
    let events_before = metric(gateway, "brokergraph_order_events_total").await;
    let cpu_before = cpu_secs(pid);
    let delivered_before = counts.delivered.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / ORDERS_PER_SEC));
    let orders = ORDERS_PER_SEC * drive.as_secs();
    for i in 0..orders as usize {
        tick.tick().await;
        stack.broker_buy(&symbols[i % symbols.len()]).await;
    }
    // Drain: until every published event (counted again each time: the last
    // fill may be published after the last order returned) reached every
    // subscription, or nothing more arrives for 2 s.
    let (mut last, mut quiet) = (0, Instant::now());
    let (events, expected) = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let events = metric(gateway, "brokergraph_order_events_total").await - events_before;
        let expected = (events * subscriptions as f64) as u64;
        let got = counts.delivered.load(Ordering::Relaxed) - delivered_before;
        if got != last {
            (last, quiet) = (got, Instant::now());
        }
        let settled = quiet.elapsed() > Duration::from_millis(500);
        if (got >= expected && settled) || quiet.elapsed() > Duration::from_secs(2) {
            break (events, expected);
        }
    };
    let gateway_cpu = cpu_secs(pid) - cpu_before;
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.unwrap_or_default());
    }
    latencies.sort_unstable();
    let delivered = counts.delivered.load(Ordering::Relaxed) - delivered_before;
    let bad = counts.bad.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);
    drop(external);

    let stream_rows = stream_up_vs_down(args).await;
    stack.stop().await;

    let where_ = if separate {
        "gateway as its own process (the `brokergraph` binary next to `bench`), its VmRSS"
            .to_string()
    } else {
        "in-process gateway (no `brokergraph` binary next to `bench`): \
         the process's RSS, clients and broker-sim included"
            .to_string()
    };
    let mut rows = vec![
        Row::new(
            "subscribe",
            "gateway RSS per connection KiB",
            format!("{per_connection_kib:.1}"),
            format!(
                "{where_}: {:.1} → {:.1} MiB for {ready} graphql-transport-ws connections × {PER_CONNECTION} \
                 `orderUpdates` ({subscriptions} subscriptions, {}; {failed} failed to open) on one account, \
                 one broker stream; opened in {open_secs:.1} s; the bench process (sim + clients) grew {:.1} MiB meanwhile",
                before / 1024.0,
                after / 1024.0,
                if subscribed { "all counted in /metrics, stream up" } else { "NOT all counted in /metrics within 60 s" },
                (bench_after - bench_before) / 1024.0
            ),
        ),
        Row::new(
            "subscribe",
            "delivery p50 / p99 ms",
            format!(
                "{:.2} / {:.2}",
                percentile_ms(&latencies, 0.5),
                percentile_ms(&latencies, 0.99)
            ),
            format!(
                "receive time − the broker's `at`, every delivery to every subscription: {orders} market orders at \
                 {ORDERS_PER_SEC}/s → {events:.0} events published; {delivered} deliveries of {expected} expected; \
                 max {:.1} ms; {bad} errors/closes; gateway CPU {gateway_cpu:.1} s over the {} s of orders and drain{}; \
                 clients and broker-sim share the 2 cores with the gateway",
                percentile_ms(&latencies, 1.0),
                drive.as_secs(),
                if separate { "" } else { " (the whole process's: the gateway is in it)" }
            ),
        ),
    ];
    rows.extend(stream_rows);
    rows
}

/// Broker REST calls per 1000 hot dashboard queries, with no subscriber (stream
/// down) and then with one holding the account's order stream up.
async fn stream_up_vs_down(args: &Args) -> Vec<Row> {
    let stack = Stack::start(|_| {}, |_| {}).await;
    stack.seed_dashboard().await;
    let body = stack.graphql(setup::dashboard_body()).await;
    assert!(!graphql_errors(&body), "dashboard failed: {body:?}");
    let c = args.connections;
    let per_1000 = |calls: u64, queries: u64| calls as f64 * 1000.0 / queries.max(1) as f64;

    let before = stack.broker_requests().await;
    let down = run(dashboard_load(stack.gateway, c, args.duration())).await;
    let down_calls = stack.broker_requests().await - before;
    let down_up = metric(stack.gateway, "brokergraph_order_stream_up").await;

    let counts = Arc::new(Counts::default());
    let (stop_tx, stop) = watch::channel(false);
    let handles = open_clients(stack.gateway, 1, 1, &counts, &stop).await;
    let up_ok = wait_subscribed(stack.gateway, 1, Duration::from_secs(20)).await;
    let before = stack.broker_requests().await;
    let up = run(dashboard_load(stack.gateway, c, args.duration())).await;
    let up_calls = stack.broker_requests().await - before;
    let still_up = metric(stack.gateway, "brokergraph_order_stream_up").await;
    let _ = stop_tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    stack.stop().await;

    let (d, u) = (
        per_1000(down_calls, down.requests),
        per_1000(up_calls, up.requests),
    );
    vec![Row::new(
        "subscribe/stream",
        "broker calls / 1000 queries, up ÷ down",
        format!("{:.2}", u / d),
        format!(
            "hot dashboard, {c} connections, {} s each: stream down (no subscriber, up={down_up}) {d:.2} per 1000 \
             ({down_calls} calls / {} queries), stream up (1 subscriber{}, up={still_up} after) {u:.2} per 1000 \
             ({up_calls} calls / {} queries; counted after the stream's first reconcile); {} + {} errors",
            args.secs,
            down.requests,
            if up_ok { "" } else { ", stream NOT up within 20 s" },
            up.requests,
            down.errors,
            up.errors
        ),
    )]
}
