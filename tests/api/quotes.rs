//! Quotes end to end, in both dialects: snapshots over REST batched into one broker
//! call per page, and `quotes` subscriptions sharing one upstream stream that
//! carries exactly the union of what is watched, within the broker's limit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use broker_sim::{Dialect, SimConfig, Stats};
use serde_json::{json, Value};

use crate::common::ws::{Incoming, WsClient, PATIENCE};
use crate::common::{self, AppOptions, TestApp};
use crate::in_both_dialects;

const QUOTES: &str =
    "subscription($symbols: [String!]!) { quotes(symbols: $symbols) { symbol bid ask last at } }";

/// A gateway on a sim whose market clock stands still, so every snapshot and every
/// streamed quote of a symbol is the same and can be compared with the sim's.
async fn still_market(dialect: Dialect, tweak: fn(&mut brokergraph::config::Config)) -> TestApp {
    common::spawn_app_with(AppOptions {
        sim: SimConfig {
            dialect,
            tick_ms: 0,
            ..common::sim_config()
        },
        tweak,
        ..AppOptions::default()
    })
    .await
}

/// Broker calls for quote snapshots, in either dialect.
fn snapshot_calls(stats: &Stats) -> u64 {
    ["GET /v1/quotes", "GET /v2/stocks/quotes/latest"]
        .iter()
        .filter_map(|route| stats.requests.get(*route))
        .flat_map(|by_status| by_status.values())
        .sum()
}

/// Upstream quote connections the sim accepted: the generic dialect's quotes
/// share the order stream's connection, Alpaca's have their own.
fn quote_connections(app: &TestApp, stats: &Stats) -> u64 {
    match app.dialect {
        Dialect::Generic => stats.streams.opened,
        Dialect::Alpaca => stats.streams.data_opened,
    }
}

/// The sim's own snapshot, `symbol → (bid, ask)`, read in its dialect.
async fn sim_quotes(app: &TestApp, symbols: &[String]) -> BTreeMap<String, (String, String)> {
    let list = symbols.join(",");
    match app.dialect {
        Dialect::Generic => app.broker_get(&format!("/v1/quotes?symbols={list}")).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| {
                let s = |k: &str| q[k].as_str().unwrap().to_string();
                (s("symbol"), (s("bid"), s("ask")))
            })
            .collect(),
        Dialect::Alpaca => {
            let body = app
                .broker_get(&format!("/v2/stocks/quotes/latest?symbols={list}"))
                .await;
            body["quotes"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(symbol, q)| {
                    let n = |k: &str| q[k].to_string();
                    (symbol.clone(), (n("bp"), n("ap")))
                })
                .collect()
        }
    }
}

/// `"187.40"` and `187.4` name the same price.
fn price(v: &str) -> rust_decimal::Decimal {
    v.trim_matches('"')
        .parse::<rust_decimal::Decimal>()
        .unwrap()
        .normalize()
}

async fn a_page_of_instrument_quotes_costs_one_broker_call(dialect: Dialect) {
    let app = still_market(dialect, |_| {}).await;
    let query = "{ instruments(first: 50) { nodes { symbol quote { bid ask last at asOf } } } }";
    let data = app.data(query, json!({})).await;
    let nodes = data["instruments"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 50);
    assert_eq!(
        snapshot_calls(&app.stats().await),
        1,
        "one snapshot for the page"
    );

    let symbols: Vec<String> = nodes
        .iter()
        .map(|n| n["symbol"].as_str().unwrap().to_string())
        .collect();
    let expected = sim_quotes(&app, &symbols).await;
    for node in nodes {
        let symbol = node["symbol"].as_str().unwrap();
        let (bid, ask) = &expected[symbol];
        let quote = &node["quote"];
        assert_eq!(
            price(quote["bid"].as_str().unwrap()),
            price(bid),
            "{symbol}"
        );
        assert_eq!(
            price(quote["ask"].as_str().unwrap()),
            price(ask),
            "{symbol}"
        );
        match dialect {
            Dialect::Generic => assert!(quote["last"].is_string(), "{quote}"),
            // Alpaca's quotes carry no last trade.
            Dialect::Alpaca => assert!(quote["last"].is_null(), "{quote}"),
        }
    }

    // The same page again within the quote TTL is served from the cache, and a
    // single symbol of the page from the same snapshot's batch.
    let calls = snapshot_calls(&app.stats().await);
    app.data(query, json!({})).await;
    let one = "query($s: String!) { quote(symbol: $s) { symbol ask } }";
    let one = app.data(one, json!({ "s": symbols[0] })).await;
    assert_eq!(one["quote"]["symbol"], symbols[0].as_str());
    assert_eq!(
        snapshot_calls(&app.stats().await),
        calls,
        "cached for cache.quote_ttl_ms, by symbol"
    );
    let none = app
        .data("{ quote(symbol: \"NO-SUCH\") { ask } }", json!({}))
        .await;
    assert!(
        none["quote"].is_null(),
        "an unknown symbol has no quote: {none}"
    );
}

/// Waits until the sim holds exactly `union` upstream for the gateway.
async fn upstream_symbols(app: &TestApp, union: &BTreeSet<String>) {
    let want: Vec<String> = union.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stats = app.stats().await;
        if stats.streams.quote_symbols == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream symbols {:?}, expected {want:?}",
            stats.streams.quote_symbols
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the gateway's `/metrics` shows `name` at `value`.
async fn gauge(app: &TestApp, name: &str, value: usize) {
    let line = format!("{name} {value}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !app.metrics().await.lines().any(|l| l == line) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw `{line}` in /metrics"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The first quote of each of a connection's subscriptions.
async fn first_quotes(ws: &mut WsClient, subscriptions: usize) {
    let mut started = BTreeSet::new();
    while started.len() < subscriptions {
        match ws.next().await {
            Incoming::Next { id, payload } => {
                assert!(payload.get("errors").is_none(), "{payload}");
                started.insert(id);
            }
            other => panic!("expected quotes, got {other:?}"),
        }
    }
}

async fn subscribers_share_one_upstream_with_exactly_the_union(dialect: Dialect) {
    let app = still_market(dialect, |c| {
        c.subscriptions.linger = Duration::from_millis(200);
    })
    .await;
    let pool: Vec<String> = app
        .tradable_instruments()
        .await
        .into_iter()
        .map(|(s, _)| s)
        .take(24)
        .collect();
    // 40 overlapping sets of 3 to 6 symbols: set k starts at symbol k of the pool.
    let sets: Vec<Vec<String>> = (0..40)
        .map(|k| {
            (0..3 + k % 4)
                .map(|i| pool[(k + i) % pool.len()].clone())
                .collect()
        })
        .collect();
    // 300 subscribers, 20 per connection (subscriptions.max_per_connection); the
    // first connection's only over the first five sets.
    let set_of = |c: usize, s: usize| match c {
        0 => &sets[s % 5],
        _ => &sets[(c * 20 + s) % sets.len()],
    };
    let mut connections = Vec::new();
    for c in 0..15 {
        let mut ws = app.ws().await;
        for s in 0..20 {
            let set = set_of(c, s);
            ws.subscribe(QUOTES, json!({ "symbols": set })).await;
        }
        first_quotes(&mut ws, 20).await;
        connections.push((ws, c));
    }
    let union: BTreeSet<String> = sets.iter().flatten().cloned().collect();
    upstream_symbols(&app, &union).await;
    assert_eq!(quote_connections(&app, &app.stats().await), 1);
    gauge(
        &app,
        "brokergraph_quote_subscriptions{account=\"default\"}",
        300,
    )
    .await;
    gauge(
        &app,
        "brokergraph_quote_symbols{account=\"default\"}",
        union.len(),
    )
    .await;

    // Every connection but the first leaves: what it alone watched goes upstream
    // too, after the linger.
    connections.truncate(1);
    let kept: BTreeSet<String> = (0..20).flat_map(|s| set_of(0, s).clone()).collect();
    assert!(kept.len() < union.len(), "the test must shrink the set");
    upstream_symbols(&app, &kept).await;
    assert_eq!(
        quote_connections(&app, &app.stats().await),
        1,
        "the upstream was changed, not reopened"
    );
}

/// The code and message of the error a `quotes` subscription gets at once: an
/// execution error is a result with `errors`, then `complete`.
async fn refused_query(ws: &mut WsClient, query: &str, variables: Value) -> (String, String) {
    ws.subscribe(query, variables).await;
    let payload = match ws.next().await {
        Incoming::Next { payload, .. } => payload,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(matches!(ws.next().await, Incoming::Complete));
    let error = &payload["errors"][0];
    assert!(payload["data"].is_null(), "{payload}");
    (
        error["extensions"]["code"].as_str().unwrap().to_string(),
        error["message"].as_str().unwrap().to_string(),
    )
}

async fn refused(ws: &mut WsClient, symbols: Value) -> (String, String) {
    refused_query(ws, QUOTES, json!({ "symbols": symbols })).await
}

async fn bad_symbol_lists_are_refused_with_a_code_and_nothing_upstream(dialect: Dialect) {
    let app = still_market(dialect, |_| {}).await;
    let symbols: Vec<String> = app
        .tradable_instruments()
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    let mut ws = app.ws().await;

    let (code, _) = refused(&mut ws, json!([])).await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, message) = refused(&mut ws, json!([symbols[0], "NO-SUCH"])).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("NO-SUCH"), "{message}");
    // Inline, since as variables they would exceed limits.max_variables_bytes.
    let many: Vec<String> = (0..10_000).map(|i| format!("\"S{i}\"")).collect();
    let inline = format!(
        "subscription {{ quotes(symbols: [{}]) {{ symbol }} }}",
        many.join(",")
    );
    let (code, message) = refused_query(&mut ws, &inline, json!({})).await;
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(
        message.contains("50"),
        "names subscriptions.max_symbols: {message}"
    );
    let (code, message) = refused(&mut ws, json!(symbols[..31])).await;
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(
        message.contains("at most 30"),
        "names the broker's limit: {message}"
    );

    let stats = app.stats().await;
    assert_eq!(
        quote_connections(&app, &stats),
        0,
        "nothing was subscribed upstream"
    );
    assert!(stats.streams.quote_symbols.is_empty());

    // Within the limit across subscribers: 20 and then 10 more fit, 1 more does not.
    let mut other = app.ws().await;
    other
        .subscribe(QUOTES, json!({ "symbols": symbols[..20] }))
        .await;
    first_quotes(&mut other, 1).await;
    other
        .subscribe(QUOTES, json!({ "symbols": symbols[10..30] }))
        .await;
    first_quotes(&mut other, 2).await;
    let (code, message) = refused(&mut ws, json!([symbols[30]])).await;
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(message.contains("at most 30"), "{message}");
    upstream_symbols(&app, &symbols[..30].iter().cloned().collect()).await;
}

async fn a_streamed_symbol_is_quoted_without_a_broker_call(dialect: Dialect) {
    let app = still_market(dialect, |_| {}).await;
    let symbol = app.tradable_instruments().await[0].0.clone();
    let mut ws = app.ws().await;
    ws.subscribe(QUOTES, json!({ "symbols": [symbol] })).await;
    let streamed = ws.next_data().await;
    let calls = snapshot_calls(&app.stats().await);
    let query = "query($s: String!) { quote(symbol: $s) { symbol bid ask } }";
    for _ in 0..3 {
        let quoted = app.data(query, json!({ "s": symbol })).await;
        assert_eq!(quoted["quote"]["bid"], streamed["quotes"]["bid"]);
        assert_eq!(quoted["quote"]["ask"], streamed["quotes"]["ask"]);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(
        snapshot_calls(&app.stats().await),
        calls,
        "served from the stream, past the quote TTL"
    );
}

const SUBMIT: &str = "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { \
    order { id status } userErrors { field code message } } }";

async fn limit(app: &TestApp, symbol: &str, side: &str, price: &str) -> Value {
    let input = json!({
        "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol, "side": side,
        "type": "LIMIT", "quantity": "1", "limitPrice": price,
    });
    app.data(SUBMIT, json!({ "input": input })).await["submitOrder"].clone()
}

async fn a_limit_far_through_the_quote_is_refused_by_the_collar(dialect: Dialect) {
    let app = still_market(dialect, |c| c.orders.price_collar_pct = 5).await;
    let picked = app.data(common::INSTRUMENTS_FOR_PICKING, json!({})).await;
    let symbol = common::cheap_symbol_in(&picked, &app.sim).await;
    let (bid, ask) = sim_quotes(&app, std::slice::from_ref(&symbol)).await[&symbol].clone();
    assert!(price(&ask) < price("10.50") && price(&bid) > price("9.50"));

    for (side, far) in [("BUY", "11.00"), ("SELL", "9.00")] {
        let refused = limit(&app, &symbol, side, far).await;
        assert!(refused["order"].is_null(), "{refused}");
        let error = &refused["userErrors"][0];
        assert_eq!(error["code"], "PRICE_OUTSIDE_COLLAR", "{refused}");
        assert_eq!(error["field"], json!(["input", "limitPrice"]));
        assert!(error["message"].as_str().unwrap().contains("5%"), "{error}");
    }
    assert_eq!(
        app.stats().await.orders_created,
        0,
        "nothing reached the broker"
    );

    let placed = limit(&app, &symbol, "BUY", "10.20").await;
    assert_eq!(placed["userErrors"], json!([]), "{placed}");
    assert_eq!(app.stats().await.orders_created, 1);
}

in_both_dialects!(
    a_page_of_instrument_quotes_costs_one_broker_call,
    subscribers_share_one_upstream_with_exactly_the_union,
    bad_symbol_lists_are_refused_with_a_code_and_nothing_upstream,
    a_streamed_symbol_is_quoted_without_a_broker_call,
    a_limit_far_through_the_quote_is_refused_by_the_collar,
);
