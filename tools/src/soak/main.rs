//! The chaos soak: broker-sim with a fault profile, the gateway in front of it, and
//! clients that submit, retry with the same key, cancel and poll. Then it reconciles
//! what the clients were told against what the broker holds. Prints one summary
//! line; exits 1 on any violation (a duplicate, a lost order, an orphan broker order,
//! an undocumented error or a 500).
//!
//! `cargo run --release -p brokergraph-tools --bin soak -- --clients 32 --orders 300` (see docs/resilience.md).

mod client;
#[path = "../common/mod.rs"]
mod common;
mod reconcile;

use std::sync::Arc;
use std::time::{Duration, Instant};

use brokergraph::config::Config;
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use clap::Parser;
use serde_json::json;

const SIM_KEY: &str = "soak-broker-key";

#[derive(Parser, Debug, Clone)]
#[command(about = "Chaos soak: faults at the broker, retries at the client, then reconcile")]
pub struct Args {
    /// Concurrent clients, each submitting `orders` orders.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Orders per client.
    #[arg(long, default_value_t = 50)]
    orders: usize,
    /// Multiplies every fault rate of the default profile (2.5 ≈ a 50 % fault rate).
    #[arg(long, default_value_t = 1.0)]
    fault_scale: f64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

/// The default profile (docs/resilience.md): 20 % 5xx, 5 % hangs, 5 % resets, 10 %
/// commit-then-fail, 429 bursts, 50-200 ms latency.
fn fault_profile(seed: u64, scale: f64) -> serde_json::Value {
    let r = |rate: f64| (rate * scale).min(1.0);
    json!({ "seed": seed, "rules": [
        { "route": "*", "kind": "latency", "ms": 50, "jitter_ms": 150 },
        { "route": "POST /v1/orders", "kind": "commit_then_fail", "rate": r(0.05), "as": "503" },
        { "route": "POST /v1/orders", "kind": "commit_then_fail", "rate": r(0.05), "as": "reset" },
        { "route": "*", "kind": "status", "status": 503, "rate": r(0.08) },
        { "route": "*", "kind": "status", "status": 502, "rate": r(0.06) },
        { "route": "*", "kind": "status", "status": 500, "rate": r(0.06) },
        { "route": "*", "kind": "status", "status": 429, "rate": r(0.05), "retry_after": 1 },
        { "route": "*", "kind": "hang", "rate": r(0.05) },
        { "route": "*", "kind": "reset", "rate": r(0.05) }
    ]})
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let passed = run(args).await;
    std::process::exit(if passed { 0 } else { 1 });
}

async fn run(args: Args) -> bool {
    let started = Instant::now();
    let sim = broker_sim::spawn(broker_sim::SimConfig {
        api_keys: vec![SIM_KEY.into()],
        admin_token: Some("soak-admin".into()),
        seed: args.seed,
        instruments: 200,
        rate_limit: 1_000_000,
        tick_ms: 50,
        ..broker_sim::SimConfig::default()
    })
    .await
    .expect("broker-sim starts");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("literal"),
        ..Config::default()
    };
    config.broker.url = Some(sim.base_url());
    config.broker.api_key = Some(Secret::new(SIM_KEY));
    // Hangs end when the gateway gives up on the broker, not after the default 10 s.
    config.broker.request_timeout = Duration::from_millis(1000);
    let gateway = Gateway::bind(config).await.expect("gateway binds");
    let url = format!("http://{}/graphql", gateway.local_addr());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.run(async {
        let _ = stop_rx.await;
    }));
    let rss_start = common::rss_mib();

    let symbols = common::cheap_symbols(&sim, SIM_KEY, 5).await;
    sim.set_faults(fault_profile(args.seed, args.fault_scale))
        .await;
    let tally = Arc::new(client::Tally::default());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let poller = tokio::spawn(client::poll_dashboard(
        http.clone(),
        url.clone(),
        tally.clone(),
    ));
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let c = client::Client::new(http.clone(), url.clone(), symbols.clone(), tally.clone());
            tokio::spawn(async move { c.run(i, args.orders).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for c in clients {
        outcomes.extend(c.await.expect("client task"));
    }
    tally.stop();
    let _ = poller.await;
    sim.clear_faults().await;
    let rss_end = common::rss_mib();

    let report = reconcile::reconcile(&sim, &outcomes).await;
    let t = tally.snapshot();
    let violations = report.violations() + t.undocumented + t.http_500;
    println!(
        "soak: clients={} submitted={} answered={} broker_orders={} duplicates={} lost={} orphans={} \
         gave_up={} cancels={} polls={} undocumented_errors={} http_500={} retried_answers={} retry_codes={} \
         rss_start_mib={:.0} rss_end_mib={:.0} secs={:.1} result={}",
        args.clients,
        outcomes.len(),
        report.answered,
        report.broker_orders,
        report.duplicates,
        report.lost,
        report.orphans,
        report.gave_up,
        t.cancels,
        t.polls,
        t.undocumented,
        t.http_500,
        t.retryable,
        if t.codes.is_empty() { "-" } else { &t.codes },
        rss_start,
        rss_end,
        started.elapsed().as_secs_f64(),
        if violations == 0 { "PASS" } else { "FAIL" }
    );
    for line in report.details.iter().chain(t.samples.iter()).take(20) {
        eprintln!("  violation: {line}");
    }
    let _ = stop_tx.send(());
    sim.shutdown().await;
    violations == 0
}
