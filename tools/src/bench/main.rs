//! The benchmark suite (docs/benchmarks.md): broker-sim and the gateway in this process on
//! port 0, a load generator on its own runtime, one table at the end.
//!
//! `cargo run --release -p brokergraph-tools --bin bench -- all` (or one scenario; see docs/benchmarks.md).
//! Every scenario runs a few seconds so that `all` takes about two minutes on 2
//! cores; the numbers are for comparing runs on one machine, not for tests.

#[path = "../common/mod.rs"]
mod common;
mod executed;
mod load;
mod memory;
mod quotes;
mod replica;
mod scenarios;
mod setup;
mod subscribe;

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Floor,
    Hot,
    Cold,
    Fanout,
    Storm,
    Submit,
    Memory,
    /// Hot path with `redis.url` set ÷ without (starts its own redis-server).
    Replica,
    /// WebSocket subscriptions: gateway RSS per connection, delivery latency,
    /// broker calls with the order stream up vs down.
    Subscribe,
    /// 1 000 `quotes` subscribers × 20 symbols at 2 Hz: delivery latency, what was
    /// delivered of what was asked, RSS per subscriber.
    Quotes,
    /// The dashboard with a distinct variable per request: every request executes.
    Executed,
    /// The dashboard from 1 000 gateway keys in rotation.
    Users,
    All,
}

#[derive(Parser, Debug)]
#[command(about = "brokergraph benchmarks: broker-sim + gateway in process, one table")]
pub struct Args {
    #[arg(value_enum, default_value = "all")]
    scenario: Scenario,
    /// Seconds each measured run lasts (after its warm-up).
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Connections for `floor` and `hot`.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Orders created at the broker for `memory` (the full-size run: 100000).
    #[arg(long, default_value_t = 20_000)]
    orders: usize,
    /// Cached `order` reads for `memory` (the full-size run: 1000000).
    #[arg(long, default_value_t = 200_000)]
    reads: u64,
    /// WebSocket connections for `subscribe` (5 `orderUpdates` subscriptions each).
    #[arg(long, default_value_t = 2_000)]
    ws_connections: usize,
    /// Another build's `brokergraph` binary: `executed` also runs against it, side
    /// by side with this build's (`scripts/bench-baseline` builds one from a commit).
    #[arg(long)]
    baseline: Option<std::path::PathBuf>,
}

impl Args {
    fn duration(&self) -> Duration {
        Duration::from_secs(self.secs)
    }
}

/// One line of the table.
pub struct Row {
    scenario: &'static str,
    metric: &'static str,
    value: String,
    detail: String,
}

impl Row {
    fn new(scenario: &'static str, metric: &'static str, value: String, detail: String) -> Row {
        Row {
            scenario,
            metric,
            value,
            detail,
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let started = Instant::now();
    let all = args.scenario == Scenario::All;
    let wants = |s: Scenario| all || args.scenario == s;
    let mut rows = Vec::new();
    if wants(Scenario::Hot) || wants(Scenario::Floor) {
        rows.extend(scenarios::floor_and_hot(&args, wants(Scenario::Hot)).await);
        progress(&rows);
    }
    for scenario in [
        Scenario::Executed,
        Scenario::Users,
        Scenario::Cold,
        Scenario::Fanout,
        Scenario::Storm,
        Scenario::Submit,
        Scenario::Memory,
        Scenario::Replica,
        Scenario::Subscribe,
        Scenario::Quotes,
    ] {
        if wants(scenario) {
            rows.extend(match scenario {
                Scenario::Cold => scenarios::cold(&args).await,
                Scenario::Fanout => scenarios::fanout(&args).await,
                Scenario::Storm => scenarios::storm(&args).await,
                Scenario::Submit => scenarios::submit(&args).await,
                Scenario::Replica => replica::replica(&args).await,
                Scenario::Subscribe => subscribe::subscribe(&args).await,
                Scenario::Quotes => quotes::quotes(&args).await,
                Scenario::Executed => executed::executed(&args).await,
                Scenario::Users => executed::users(&args).await,
                _ => memory::memory(&args).await,
            });
            progress(&rows);
        }
    }
    println!();
    println!("| scenario | metric | value | detail |");
    println!("|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.scenario, r.metric, r.value, r.detail
        );
    }
    println!();
    println!(
        "{} cores, {} s total, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed().as_secs(),
        if cfg!(debug_assertions) {
            "DEBUG build: numbers are meaningless, use --release"
        } else {
            "release build"
        }
    );
}

fn progress(rows: &[Row]) {
    if let Some(r) = rows.last() {
        eprintln!("done: {} {} = {}", r.scenario, r.metric, r.value);
    }
}
