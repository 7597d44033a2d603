//! `quotes`: many graphql-transport-ws subscribers of overlapping symbol sets, fed
//! by the one quote stream the gateway holds for the account.
//!
//! 1 000 subscribers (200 sockets of 5 subscriptions) each watch 20 of the broker's
//! 30 streamable symbols, which broker-sim quotes twice a second: 40 000
//! deliveries a second asked of the gateway. Reported: delivery latency (client receive time − the broker's quote
//! time, one clock), deliveries against what was asked (a subscriber that falls
//! behind gets the latest quote per symbol, so less than asked means conflation,
//! not loss), and the gateway's RSS per subscriber, as its own process when the
//! `brokergraph` binary is next to `bench`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::setup::Stack;
use super::subscribe::{
    connect_acked, cpu_secs, gateway_binary, percentile_ms, raise_file_limit, rss_kib,
    spawn_gateway,
};
use super::Row;

const QUOTES: &str = "subscription($s: [String!]!) { quotes(symbols: $s) { symbol bid ask at } }";
const SUBSCRIBERS: usize = 1_000;
const PER_CONNECTION: usize = 5;
/// What broker-sim streams per key (its default `--stream-symbol-limit`).
const POOL: usize = 30;
const SYMBOLS_EACH: usize = 20;
/// broker-sim's default `--quote-hz`.
const HZ: u64 = 2;

#[derive(Default)]
struct Counts {
    ready: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
    bad: AtomicU64,
}

/// The quote's `at`, without parsing the whole message.
fn quoted_at(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let start = text.find("\"at\":\"")? + 6;
    let end = start + text[start..].find('"')?;
    chrono::DateTime::parse_from_rfc3339(&text[start..end])
        .ok()
        .map(|t| t.to_utc())
}

/// One socket carrying `sets.len()` `quotes` subscriptions; returns the latencies
/// it saw (µs) once `stop` turns true.
async fn client(
    addr: std::net::SocketAddr,
    sets: Vec<Vec<String>>,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let Some(mut ws) = connect_acked(addr).await else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        return latencies;
    };
    let mut ok = true;
    for (id, set) in sets.iter().enumerate() {
        let subscribe = json!({ "id": id.to_string(), "type": "subscribe",
            "payload": { "query": QUOTES, "variables": { "s": set } } });
        ok = ok && ws.send(Message::text(subscribe.to_string())).await.is_ok();
    }
    if !ok {
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
                    if let Some(at) = quoted_at(&text) {
                        let us = (chrono::Utc::now() - at).num_microseconds().unwrap_or(0).max(0);
                        latencies.push(us.min(u32::MAX as i64) as u32);
                        counts.delivered.fetch_add(1, Ordering::Relaxed);
                    } else if text.contains("\"ping\"") {
                        let _ = ws.send(Message::text(pong.clone())).await;
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

pub async fn quotes(args: &super::Args) -> Vec<Row> {
    let sockets = SUBSCRIBERS / PER_CONNECTION;
    raise_file_limit(sockets);
    let stack = Stack::start(
        |_| {},
        |c| c.subscriptions.max_connections_per_key = sockets + 16,
    )
    .await;
    let pool = stack.cheap_symbols(POOL).await;
    let external = match gateway_binary() {
        Some(bin) => spawn_gateway(&bin, &stack.sim.base_url(), sockets + 16).await,
        None => None,
    };
    let (gateway, pid, separate) = match &external {
        Some((process, addr)) => (*addr, process.0.id(), true),
        None => (stack.gateway, std::process::id(), false),
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid);

    // Subscriber k watches the 20 symbols of the pool from position k on.
    let set = |k: usize| -> Vec<String> {
        (0..SYMBOLS_EACH)
            .map(|i| pool[(k + i) % POOL].clone())
            .collect()
    };
    let counts = Arc::new(Counts::default());
    let (stop_tx, stop) = watch::channel(false);
    let opening = Instant::now();
    let mut handles = Vec::with_capacity(sockets);
    for c in 0..sockets {
        let sets = (0..PER_CONNECTION)
            .map(|s| set(c * PER_CONNECTION + s))
            .collect();
        handles.push(tokio::spawn(client(
            gateway,
            sets,
            counts.clone(),
            stop.clone(),
        )));
        if c % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while counts.ready.load(Ordering::Relaxed) + counts.failed.load(Ordering::Relaxed)
        < sockets as u64
        && opening.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Until every subscriber had its first quotes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open_secs = opening.elapsed().as_secs_f64();
    let after = rss_kib(pid);
    let upstream = stack.sim.stats().await.streams;

    let run = args.duration();
    let cpu_before = cpu_secs(pid);
    let delivered_before = counts.delivered.load(Ordering::Relaxed);
    let sent_before = stack.sim.stats().await.streams.quotes_sent;
    tokio::time::sleep(run).await;
    let sent = stack.sim.stats().await.streams.quotes_sent - sent_before;
    let delivered = counts.delivered.load(Ordering::Relaxed) - delivered_before;
    let cpu = cpu_secs(pid) - cpu_before;
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.unwrap_or_default());
    }
    latencies.sort_unstable();
    drop(external);
    stack.stop().await;

    // Each upstream quote of a symbol is due to every subscriber watching it.
    let watchers_per_symbol = (SUBSCRIBERS * SYMBOLS_EACH) as f64 / POOL as f64;
    let asked = sent as f64 * watchers_per_symbol;
    let ready = counts.ready.load(Ordering::Relaxed);
    let (failed, bad) = (
        counts.failed.load(Ordering::Relaxed),
        counts.bad.load(Ordering::Relaxed),
    );
    let where_ = if separate {
        "the gateway as its own process, its VmRSS"
    } else {
        "in-process gateway: the process's RSS, clients and broker-sim included"
    };
    vec![
        Row::new(
            "quotes",
            "delivery p50 / p99 ms",
            format!(
                "{:.1} / {:.1}",
                percentile_ms(&latencies, 0.5),
                percentile_ms(&latencies, 0.99)
            ),
            format!(
                "{SUBSCRIBERS} `quotes` subscribers × {SYMBOLS_EACH} of {POOL} symbols on {ready} sockets \
                 ({failed} failed, {bad} errors/closes), broker-sim quoting {HZ}/s per symbol: receive time − \
                 the broker's quote time, over {} s; upstream: {} connection(s), {} symbols; gateway CPU \
                 {cpu:.1} s in {} s (2 cores shared with clients and broker-sim)",
                run.as_secs(),
                upstream.opened,
                upstream.quote_symbols.len(),
                run.as_secs()
            ),
        ),
        Row::new(
            "quotes",
            "deliveries ÷ asked",
            format!("{:.3}", delivered as f64 / asked.max(1.0)),
            format!(
                "{delivered} deliveries; asked: {sent} upstream quotes × {watchers_per_symbol:.0} watchers each = \
                 {asked:.0}; below 1 the gateway conflated (latest quote per symbol) what subscribers could not \
                 take in time"
            ),
        ),
        Row::new(
            "quotes",
            "gateway RSS per subscriber KiB",
            format!("{:.1}", (after - before) / SUBSCRIBERS as f64),
            format!(
                "{where_}: {:.1} → {:.1} MiB with {SUBSCRIBERS} subscribers, opened in {open_secs:.1} s",
                before / 1024.0,
                after / 1024.0
            ),
        ),
    ]
}
