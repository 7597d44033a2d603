//! The executed path: requests the response cache cannot answer, so every one runs
//! the schema, with every broker read served from the warm resource cache.
//!
//! - `executed`: the dashboard with a distinct variable per request (a `nonce` the
//!   document does not use: the answer is the same, the response-cache key is not).
//! - `users`: the dashboard from 1 000 gateway keys in rotation, so the response
//!   cache serves each caller only its own repeats.
//!
//! Each runs in interleaved rounds with `floor`, as `hot` does. With `--baseline BIN`
//! (another build's `brokergraph`, see `scripts/bench-baseline`), `executed` also
//! runs against two gateway processes in front of the same broker-sim, this build's
//! (the `brokergraph` next to `bench`) and the baseline, interleaved: that ratio is
//! the one that says whether a change made the path faster.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use brokergraph::config::{GatewayKeyConfig, Scope, DEFAULT_ACCOUNT};
use bytes::Bytes;
use hyper::header::HeaderValue;

use super::load::{graphql_errors, AuthFn, BodyFn, Load, Outcome};
use super::scenarios::{dashboard_load, median, run, ROUNDS};
use super::setup::{self, Stack};
use super::subscribe::{gateway_binary, spawn_gateway};
use super::{Args, Row};

/// Gateway keys `users` rotates through.
const USERS: usize = 1_000;

/// The dashboard with `"variables": {"nonce": n}`, n distinct per request.
fn distinct_bodies() -> BodyFn {
    let query = serde_json::to_string(setup::DASHBOARD).expect("JSON");
    Arc::new(move |conn, i| {
        let nonce = (conn as u64) << 40 | i;
        Bytes::from(format!(
            r#"{{"query":{query},"variables":{{"nonce":{nonce}}}}}"#
        ))
    })
}

fn user_key(i: usize) -> String {
    format!("bench-user-{i}")
}

/// Runs each load once per round, in order, for `ROUNDS` rounds.
async fn interleaved(loads: &[Load]) -> Vec<Vec<Outcome>> {
    let mut outs: Vec<Vec<Outcome>> = loads.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (load, out) in loads.iter().zip(&mut outs) {
            out.push(run(load.clone()).await);
        }
    }
    outs
}

/// The median round's ratio of `b` to `a` (rounds paired), and every round's.
fn ratio_row(name: &'static str, a: &[Outcome], b: &[Outcome], what: &str) -> Row {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| b.rps() / a.rps()).collect();
    Row::new(
        name,
        "ratio",
        format!("{:.2}", median(ratios.clone())),
        format!(
            "median of {ROUNDS} interleaved rounds (all: {}): {what}",
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn rate_row(name: &'static str, outs: &[Outcome], each: Duration, note: &str) -> Row {
    let m = median(outs.iter().map(Outcome::rps).collect());
    let out = outs
        .iter()
        .find(|o| o.rps() == m)
        .expect("the median is one of them");
    Row::new(
        name,
        "req/s",
        format!("{m:.0}"),
        format!(
            "median of {ROUNDS} × {} s (all: {}), p50 {:.2} ms, p99 {:.2} ms, {} errors{}{note}",
            each.as_secs(),
            outs.iter()
                .map(|o| format!("{:.0}", o.rps()))
                .collect::<Vec<_>>()
                .join(", "),
            out.ms(0.5),
            out.ms(0.99),
            out.errors,
            out.sample_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (e.g. {e})")),
        ),
    )
}

pub async fn executed(args: &Args) -> Vec<Row> {
    let stack = Stack::start(|_| {}, |_| {}).await;
    stack.seed_dashboard().await;
    let body = stack.graphql(setup::dashboard_body()).await;
    assert!(!graphql_errors(&body), "dashboard failed: {body:?}");
    let floor_addr = setup::floor_server(body).await;
    let c = args.connections;
    let each = (args.duration() / 2).max(Duration::from_secs(1));
    let executed = |addr| Load {
        body: Some(distinct_bodies()),
        ..dashboard_load(addr, c, each)
    };
    let probe = run(Load {
        duration: Duration::from_secs(1),
        ..executed(stack.gateway)
    })
    .await;
    assert_eq!(probe.errors, 0, "executed: {:?}", probe.sample_error);
    let floor = dashboard_load(floor_addr, c, each);
    let before = stack.cache.snapshot();
    let outs = interleaved(&[floor.clone(), executed(stack.gateway)]).await;
    let calls = stack.cache.snapshot().total_broker_calls() - before.total_broker_calls();
    let mut rows = vec![
        ratio_row(
            "executed/floor",
            &outs[0],
            &outs[1],
            "dashboard with a distinct variable per request ÷ floor",
        ),
        rate_row(
            "executed",
            &outs[1],
            each,
            &format!(", {c} connections, {calls} broker calls in all"),
        ),
    ];
    if let Some(baseline) = &args.baseline {
        rows.extend(against_baseline(&stack, baseline, executed).await);
    }
    stack.stop().await;
    rows
}

/// This build's gateway process and the baseline's, in front of one broker-sim.
async fn against_baseline(
    stack: &Stack,
    baseline: &Path,
    executed: impl Fn(std::net::SocketAddr) -> Load,
) -> Vec<Row> {
    let broker = stack.sim.base_url();
    let Some(current) = gateway_binary() else {
        return vec![Row::new(
            "executed/baseline",
            "ratio",
            "n/a".into(),
            "no `brokergraph` binary next to `bench`: build it (`cargo build --release`)".into(),
        )];
    };
    let (Some((_ours, ours)), Some((_theirs, theirs))) = (
        spawn_gateway(&current, &broker, 10_000).await,
        spawn_gateway(baseline, &broker, 10_000).await,
    ) else {
        return vec![Row::new(
            "executed/baseline",
            "ratio",
            "n/a".into(),
            format!(
                "{} or {} did not start",
                current.display(),
                baseline.display()
            ),
        )];
    };
    for addr in [ours, theirs] {
        run(Load {
            duration: Duration::from_secs(1),
            ..executed(addr)
        })
        .await;
    }
    let outs = interleaved(&[executed(theirs), executed(ours)]).await;
    let each = executed(ours).duration;
    vec![
        ratio_row(
            "executed/baseline",
            &outs[0],
            &outs[1],
            &format!(
                "this build's gateway process ÷ {}'s, same broker-sim, same load",
                baseline.display()
            ),
        ),
        rate_row("executed (process)", &outs[1], each, ", this build"),
        rate_row("executed (baseline)", &outs[0], each, ", the baseline"),
    ]
}

pub async fn users(args: &Args) -> Vec<Row> {
    let keys = |c: &mut brokergraph::config::Config| {
        c.keys = (0..USERS)
            .map(|i| GatewayKeyConfig {
                id: format!("user-{i}"),
                sha256: brokergraph::auth::hash_key(&user_key(i)),
                scopes: vec![Scope::Read],
                account: DEFAULT_ACCOUNT.to_string(),
            })
            .collect();
        // The scenario measures execution, not the per-key limit.
        c.rate_limit.per_minute = 0;
    };
    let stack = Stack::start(|_| {}, keys).await;
    stack.seed_dashboard().await;
    let auth: Vec<HeaderValue> = (0..USERS)
        .map(|i| HeaderValue::try_from(format!("Bearer {}", user_key(i))).expect("header"))
        .collect();
    let auth: AuthFn = Arc::new(move |conn, i| auth[(conn * 97 + i as usize) % USERS].clone());
    let c = args.connections;
    let each = (args.duration() / 2).max(Duration::from_secs(1));
    let users = Load {
        auth: Some(auth),
        ..dashboard_load(stack.gateway, c, each)
    };
    let probe = run(Load {
        duration: Duration::from_secs(1),
        ..users.clone()
    })
    .await;
    assert_eq!(probe.errors, 0, "users: {:?}", probe.sample_error);
    let body = stack
        .graphql_as(setup::dashboard_body(), &user_key(0))
        .await;
    let floor = dashboard_load(setup::floor_server(body).await, c, each);
    let outs = interleaved(&[floor, users]).await;
    stack.stop().await;
    vec![
        ratio_row(
            "users/floor",
            &outs[0],
            &outs[1],
            &format!("dashboard from {USERS} gateway keys in rotation ÷ floor"),
        ),
        rate_row(
            "users",
            &outs[1],
            each,
            &format!(", {c} connections, {USERS} keys"),
        ),
    ]
}
