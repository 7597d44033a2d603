//! The benchmark scenarios. Each starts its own stack (so none inherits another's
//! warm cache or spent rate limit), measures, and returns rows for the table.

use std::sync::Arc;
use std::time::Duration;

use brokergraph::config::Config;
use bytes::Bytes;
use serde_json::json;

use super::load::{self, graphql_errors, Load, Outcome};
use super::setup::{self, Stack};
use super::{Args, Row};

/// Broker latency for `cold` and `fanout`: a nearby broker's REST API.
const BROKER_MS: u64 = 20;

pub(crate) async fn run(load: Load) -> Outcome {
    tokio::task::spawn_blocking(move || load::run(load))
        .await
        .expect("load thread")
}

pub(crate) fn dashboard_load(
    addr: std::net::SocketAddr,
    connections: usize,
    duration: Duration,
) -> Load {
    Load {
        addr,
        path: "/graphql",
        connections,
        duration,
        body: load::fixed(setup::dashboard_body()),
        headers: Vec::new(),
        auth: None,
        max_per_connection: None,
        is_error: graphql_errors,
    }
}

fn latency_fault() -> serde_json::Value {
    json!({ "rules": [{ "route": "*", "kind": "latency", "ms": BROKER_MS }] })
}

fn errors_note(out: &Outcome) -> String {
    match &out.sample_error {
        Some(e) => format!("{} errors, e.g. {e}", out.errors),
        None => format!("{} errors", out.errors),
    }
}

/// Rounds of `floor` then `hot`, interleaved so that whatever else the machine is
/// doing meanwhile weighs on both alike; the table shows the median round.
pub(crate) const ROUNDS: usize = 3;

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `floor`, and with `hot` the dashboard through the gateway on a warm cache.
pub async fn floor_and_hot(args: &Args, hot: bool) -> Vec<Row> {
    let stack = Stack::start(|_| {}, |_| {}).await;
    stack.seed_dashboard().await;
    let body = stack.graphql(setup::dashboard_body()).await;
    assert!(!graphql_errors(&body), "dashboard failed: {body:?}");
    let floor_addr = setup::floor_server(body.clone()).await;
    let warm = Duration::from_secs(1);
    let c = args.connections;
    let each = (args.duration() / 2).max(Duration::from_secs(1));
    run(dashboard_load(floor_addr, c, warm)).await;
    if hot {
        run(dashboard_load(stack.gateway, c, warm)).await;
    }
    let before = stack.cache.snapshot();
    let (mut floors, mut hots) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        floors.push(run(dashboard_load(floor_addr, c, each)).await);
        if hot {
            hots.push(run(dashboard_load(stack.gateway, c, each)).await);
        }
    }
    let after = stack.cache.snapshot();
    stack.stop().await;
    let pick = |outs: &[Outcome]| {
        let m = median(outs.iter().map(Outcome::rps).collect());
        outs.iter()
            .position(|o| o.rps() == m)
            .expect("the median is one of them")
    };
    let floor = &floors[pick(&floors)];
    let mut rows = vec![Row::new(
        "floor",
        "req/s",
        format!("{:.0}", floor.rps()),
        format!(
            "fixed {} B body, {c} connections, median of {ROUNDS} × {} s (all: {}), p50 {:.2} ms, p99 {:.2} ms, {}",
            body.len(),
            each.as_secs(),
            floors.iter().map(|o| format!("{:.0}", o.rps())).collect::<Vec<_>>().join(", "),
            floor.ms(0.5),
            floor.ms(0.99),
            errors_note(floor)
        ),
    )];
    if hot {
        let out = &hots[pick(&hots)];
        let ratios: Vec<f64> = floors
            .iter()
            .zip(&hots)
            .map(|(f, h)| h.rps() / f.rps())
            .collect();
        rows.insert(
            0,
            Row::new(
                "hot/floor",
                "ratio",
                format!("{:.2}", median(ratios.clone())),
                format!(
                    "median of {ROUNDS} interleaved rounds (all: {}): dashboard req/s through the gateway ÷ floor req/s",
                    ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", ")
                ),
            ),
        );
        rows.push(Row::new(
            "hot",
            "req/s",
            format!("{:.0}", out.rps()),
            format!(
                "{c} connections, median of {ROUNDS} × {} s (all: {}), p50 {:.2} ms, p99 {:.2} ms, {} broker calls in all, {}",
                each.as_secs(),
                hots.iter().map(|o| format!("{:.0}", o.rps())).collect::<Vec<_>>().join(", "),
                out.ms(0.5),
                out.ms(0.99),
                after.total_broker_calls() - before.total_broker_calls(),
                errors_note(out)
            ),
        ));
    }
    rows
}

/// Cache off and a 20 ms broker: what the gateway adds to a broker round trip, one
/// request at a time. A TTL of 0 makes no value ever fresh (the config file refuses
/// 0; the bench sets it in code), so every read asks the broker and no whole
/// response is reused.
pub async fn cold(args: &Args) -> Vec<Row> {
    let no_cache = |c: &mut Config| {
        let s = &mut c.cache;
        s.account_ttl = Duration::ZERO;
        s.positions_ttl = Duration::ZERO;
        s.orders_ttl = Duration::ZERO;
        s.open_order_ttl = Duration::ZERO;
        s.terminal_order_ttl = Duration::ZERO;
        s.instruments_ttl = Duration::ZERO;
    };
    let stack = Stack::start(|_| {}, no_cache).await;
    stack.seed_dashboard().await;
    stack.sim.set_faults(latency_fault()).await;
    let duration = args.duration().min(Duration::from_secs(4));
    let direct = run(Load {
        addr: stack.sim.base_url()[7..].parse().expect("sim address"),
        path: "/v1/account",
        connections: 1,
        duration,
        body: None,
        headers: vec![("authorization", format!("Bearer {}", setup::SIM_KEY))],
        auth: None,
        max_per_connection: None,
        is_error: load::never,
    })
    .await;
    let account = "{ account { id cash buyingPower equity asOf } }";
    let mut one = dashboard_load(stack.gateway, 1, duration);
    one.body = load::fixed(setup::graphql_body(account, json!({})));
    let via = run(one).await;
    let dash = run(dashboard_load(stack.gateway, 1, duration)).await;
    stack.stop().await;
    vec![
        Row::new(
            "cold",
            "added p50 / p99 ms",
            format!(
                "{:.2} / {:.2}",
                via.ms(0.5) - direct.ms(0.5),
                via.ms(0.99) - direct.ms(0.99)
            ),
            format!(
                "`account` via gateway p50 {:.2} p99 {:.2} ms vs broker direct p50 {:.2} p99 {:.2} ms ({BROKER_MS} ms injected, cache off, 1 connection, {})",
                via.ms(0.5), via.ms(0.99), direct.ms(0.5), direct.ms(0.99), errors_note(&via)
            ),
        ),
        Row::new(
            "cold dashboard",
            "p50 / p99 ms",
            format!("{:.2} / {:.2}", dash.ms(0.5), dash.ms(0.99)),
            format!(
                "account, positions, orders in parallel, then one instrument batch: ≥ 2 broker round trips; {}",
                errors_note(&dash)
            ),
        ),
    ]
}

/// 500 clients on one cold cache, broker at 20 ms: single-flight and TTLs decide
/// how many broker calls a query costs.
pub async fn fanout(args: &Args) -> Vec<Row> {
    let stack = Stack::start(|_| {}, |_| {}).await;
    stack.seed_dashboard().await;
    stack.sim.set_faults(latency_fault()).await;
    let before = stack.broker_requests().await;
    let out = run(dashboard_load(stack.gateway, 500, args.duration())).await;
    let calls = stack.broker_requests().await - before;
    stack.stop().await;
    vec![Row::new(
        "fanout",
        "broker calls / 1000 queries",
        format!("{:.2}", calls as f64 * 1000.0 / out.requests.max(1) as f64),
        format!(
            "500 connections, {} queries ({:.0}/s) cost {calls} broker calls; p50 {:.1} ms, p99 {:.1} ms, {}",
            out.requests,
            out.rps(),
            out.ms(0.5),
            out.ms(0.99),
            errors_note(&out)
        ),
    )]
}

/// A broker allowing 20 requests per 10 s, 100 clients polling the dashboard.
pub async fn storm(args: &Args) -> Vec<Row> {
    let stack = Stack::start(
        |s| {
            s.rate_limit = 20;
            s.rate_window_secs = 10;
            s.positions = 5;
        },
        |_| {},
    )
    .await;
    let out = run(dashboard_load(stack.gateway, 100, args.duration())).await;
    let stats = stack.sim.stats().await;
    let cache = stack.cache.snapshot();
    let calls: u64 = stats.requests.values().flat_map(|s| s.values()).sum();
    stack.stop().await;
    vec![Row::new(
        "storm",
        "broker 429s / client errors",
        format!("{} / {}", stats.rate_limited, out.errors),
        format!(
            "limit 20 req/10 s, 100 connections: {} queries, {calls} broker calls, {} stale answers, {} throttle waits; {}",
            out.requests,
            cache.stale_served,
            cache.throttle_waits,
            errors_note(&out)
        ),
    )]
}

const SUBMIT: &str = "mutation Submit($input: SubmitOrderInput!) { submitOrder(input: $input) \
  { order { id status } replayed userErrors { code message } } }";

fn submit_failed(body: &[u8]) -> bool {
    graphql_errors(body) || memchr::memmem::find(body, b"\"userErrors\":[]").is_none()
}

/// Market buys of one share, each under a fresh idempotency key.
pub async fn submit(args: &Args) -> Vec<Row> {
    let stack = Stack::start(|_| {}, |_| {}).await;
    let symbols = Arc::new(stack.cheap_symbols(5).await);
    let body = Arc::new(move |conn: usize, i: u64| -> Bytes {
        let symbol = &symbols[(conn + i as usize) % symbols.len()];
        setup::graphql_body(
            SUBMIT,
            json!({ "input": { "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol,
                "side": "BUY", "type": "MARKET", "quantity": "1", "timeInForce": "DAY" } }),
        )
    });
    let load = Load {
        body: Some(body),
        is_error: submit_failed,
        ..dashboard_load(stack.gateway, 16, args.duration())
    };
    let out = run(load).await;
    let created = stack.sim.stats().await.orders_created;
    stack.stop().await;
    vec![Row::new(
        "submit",
        "orders/s",
        format!("{:.0}", out.rps()),
        format!(
            "16 connections, p50 {:.2} ms, p99 {:.2} ms, {} answered, {created} created at the broker, {}",
            out.ms(0.5),
            out.ms(0.99),
            out.requests,
            errors_note(&out)
        ),
    )]
}
