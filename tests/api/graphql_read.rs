//! The read path end to end: GraphQL over the gateway over broker-sim's REST API.

use std::collections::HashSet;

use broker_sim::Dialect;
use serde_json::{json, Value};

use crate::common::{self, sim_config, spawn_app_in, spawn_app_with, AppOptions};

const DASHBOARD: &str = r#"
query Dashboard {
  account { id accountNumber status currency cash buyingPower equity asOf }
  positions(first: 20) {
    edges { cursor node { id symbol quantity averagePrice marketValue asOf
      instrument { symbol name tickSize lotSize tradable } } }
    pageInfo { hasNextPage hasPreviousPage }
  }
  orders(first: 20) {
    nodes { id brokerOrderId symbol side type quantity filledQuantity limitPrice
      timeInForce status createdAt instrument { symbol } }
  }
}"#;

async fn place_market_buy(app: &common::TestApp, symbol: &str, qty: &str) -> Value {
    app.broker_buy(symbol, qty).await
}

/// Tradable instruments from the broker, with their lot sizes.
async fn tradable(app: &common::TestApp, n: usize) -> Vec<(String, String)> {
    app.tradable_instruments()
        .await
        .into_iter()
        .take(n)
        .collect()
}

#[tokio::test]
async fn dashboard_shows_what_the_broker_has() {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            positions: 5,
            ..sim_config()
        },
        ..AppOptions::default()
    })
    .await;
    for (symbol, lot) in tradable(&app, 3).await {
        let order = place_market_buy(&app, &symbol, &lot).await;
        assert!(order.get("id").is_some(), "order placed: {order}");
    }
    let data = app.data(DASHBOARD, json!({})).await;
    let account = app.broker_get("/v1/account").await;
    let positions = app.broker_get("/v1/positions?limit=100").await;
    let orders = app.broker_get("/v1/orders?limit=100").await;

    let a = &data["account"];
    assert_eq!(a["accountNumber"], account["account_number"]);
    assert_eq!(a["cash"], account["cash"]);
    assert_eq!(a["currency"], account["currency"]);
    assert_eq!(
        a["status"],
        json!(account["status"].as_str().unwrap().to_uppercase())
    );

    let got: Vec<&Value> = data["positions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let want = positions["data"].as_array().unwrap();
    assert_eq!(got.len(), want.len().min(20));
    assert!(
        got.len() >= 5,
        "the sim's starting positions plus the fills"
    );
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["symbol"], w["symbol"]);
        assert_eq!(g["quantity"], w["quantity"]);
        assert_eq!(g["averagePrice"], w["average_price"]);
        assert_eq!(g["instrument"]["symbol"], w["symbol"]);
    }

    let got = data["orders"]["nodes"].as_array().unwrap();
    let want = orders["data"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["brokerOrderId"], w["id"]);
        assert_eq!(g["symbol"], w["symbol"]);
        assert_eq!(g["quantity"], w["quantity"]);
        assert_eq!(g["filledQuantity"], w["filled_quantity"]);
        assert_eq!(
            g["status"],
            json!(w["status"].as_str().unwrap().to_uppercase())
        );
        assert_eq!(g["side"], json!("BUY"));
        assert_eq!(g["instrument"]["symbol"], w["symbol"]);
    }
}

/// Every instrument symbol, read from the broker directly in its dialect.
async fn broker_symbols(app: &common::TestApp) -> Vec<String> {
    let mut symbols = Vec::new();
    if app.dialect == Dialect::Alpaca {
        let all = app.broker_get("/v2/assets").await;
        symbols.extend(
            all.as_array()
                .unwrap()
                .iter()
                .map(|i| i["symbol"].as_str().unwrap().to_string()),
        );
        symbols.sort();
        return symbols;
    }
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/instruments?limit=100&cursor={c}"),
            None => "/v1/instruments?limit=100".into(),
        };
        let page = app.broker_get(&path).await;
        symbols.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["symbol"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return symbols,
        }
    }
}

/// Walks `instruments` forward with page size `n`; returns symbols in order.
async fn walk_forward(app: &common::TestApp, n: i32) -> Vec<String> {
    let mut symbols = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .data(
                "query($n: Int, $after: String) { instruments(first: $n, after: $after) {
                    edges { cursor node { symbol } } pageInfo { hasNextPage endCursor } } }",
                json!({ "n": n, "after": after }),
            )
            .await;
        let conn = &data["instruments"];
        for e in conn["edges"].as_array().unwrap() {
            symbols.push(e["node"]["symbol"].as_str().unwrap().to_string());
        }
        if conn["pageInfo"]["hasNextPage"] != json!(true) {
            return symbols;
        }
        after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
}

async fn walking_instruments_yields_each_exactly_once_at_any_page_size(dialect: Dialect) {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            instruments: 450,
            dialect,
            ..sim_config()
        },
        ..AppOptions::default()
    })
    .await;
    let broker = broker_symbols(&app).await;
    assert_eq!(broker.len(), 450);
    for n in [250, 7, 100] {
        let walked = walk_forward(&app, n).await;
        assert_eq!(walked, broker, "page size {n}");
        assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 450);
    }
}

async fn last_before_walks_back_over_pages_seen_forward(dialect: Dialect) {
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            instruments: 250,
            dialect,
            ..sim_config()
        },
        ..AppOptions::default()
    })
    .await;
    let forward = walk_forward(&app, 250).await;
    let mut backward = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let data = app
            .data(
                "query($before: String) { instruments(last: 30, before: $before) {
                    edges { node { symbol } } pageInfo { hasPreviousPage startCursor } } }",
                json!({ "before": before }),
            )
            .await;
        let conn = &data["instruments"];
        let page: Vec<String> = conn["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["symbol"].as_str().unwrap().to_string())
            .collect();
        backward.splice(0..0, page);
        if conn["pageInfo"]["hasPreviousPage"] != json!(true) {
            break;
        }
        before = Some(
            conn["pageInfo"]["startCursor"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(backward, forward);
}

async fn a_forged_cursor_is_bad_user_input_and_reaches_no_broker(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let data = app
        .data(
            "{ instruments(first: 2) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let real = data["instruments"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app.stats().await.count(&app.route("GET /v1/instruments"));
    let mut forged = real.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for cursor in [forged.as_str(), "bm90IGEgY3Vyc29y", "", "!!!"] {
        let code = app
            .error_code(
                "query($c: String) { instruments(first: 2, after: $c) { nodes { symbol } } }",
                json!({ "c": cursor }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "cursor {cursor:?}");
    }
    // A real cursor of one list is foreign to another.
    let code = app
        .error_code(
            "query($c: String) { positions(first: 2, after: $c) { nodes { symbol } } }",
            json!({ "c": real }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let stats = app.stats().await;
    assert_eq!(stats.count(&app.route("GET /v1/instruments")), before);
    assert_eq!(stats.count(&app.route("GET /v1/positions")), 0);
}

async fn page_size_over_the_maximum_is_bad_user_input(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let code = app
        .error_code(
            "{ instruments(first: 501) { nodes { symbol } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let code = app
        .error_code("{ instruments(first: -1) { nodes { symbol } } }", json!({}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn instruments_of_a_page_of_orders_cost_one_lookup_per_distinct_symbol(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbols = tradable(&app, 20).await;
    for i in 0..100 {
        let (symbol, lot) = &symbols[i % 20];
        place_market_buy(&app, symbol, lot).await;
    }
    let before = app
        .stats()
        .await
        .count(&app.route("GET /v1/instruments/{symbol}"));
    let data = app
        .data(
            "{ orders(first: 100) { nodes { symbol instrument { symbol lotSize } } } }",
            json!({}),
        )
        .await;
    let nodes = data["orders"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 100);
    assert!(nodes
        .iter()
        .all(|n| n["instrument"]["symbol"] == n["symbol"]));
    let lookups = app
        .stats()
        .await
        .count(&app.route("GET /v1/instruments/{symbol}"))
        - before;
    assert!(
        lookups <= 20,
        "{lookups} instrument lookups for 20 distinct symbols"
    );
}

async fn order_and_node_fetch_by_global_id_and_unknown_is_null(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, lot) = tradable(&app, 1).await.remove(0);
    let placed = place_market_buy(&app, &symbol, &lot).await;
    let data = app
        .data(
            "{ orders(first: 1) { nodes { id brokerOrderId } } }",
            json!({}),
        )
        .await;
    let id = data["orders"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(data["orders"]["nodes"][0]["brokerOrderId"], placed["id"]);
    let data = app
        .data(
            "query($id: ID!) { order(id: $id) { brokerOrderId } node(id: $id) { id ... on Order { symbol } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["order"]["brokerOrderId"], placed["id"]);
    assert_eq!(data["node"]["symbol"], json!(symbol));
    let data = app
        .data(
            "{ instrument(symbol: \"NOPE-NOT-LISTED\") { symbol } }",
            json!({}),
        )
        .await;
    assert_eq!(data["instrument"], Value::Null);
    let code = app
        .error_code("{ order(id: \"garbage\") { id } }", json!({}))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

async fn orders_filter_by_status_and_symbol(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbols = tradable(&app, 2).await;
    place_market_buy(&app, &symbols[0].0, &symbols[0].1).await;
    place_market_buy(&app, &symbols[1].0, &symbols[1].1).await;
    let data = app
        .data(
            "query($s: String) { orders(first: 10, filter: { symbol: $s, status: ALL }) { nodes { symbol } } }",
            json!({ "s": symbols[1].0 }),
        )
        .await;
    let nodes = data["orders"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["symbol"], json!(symbols[1].0));
    let data = app
        .data(
            "{ orders(first: 10, filter: { status: OPEN }) { nodes { status } } }",
            json!({}),
        )
        .await;
    assert!(data["orders"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["status"] != json!("FILLED")));
}

// The same tests against broker-sim's generic (v1) and Alpaca (v2) dialects.
crate::in_both_dialects!(
    walking_instruments_yields_each_exactly_once_at_any_page_size,
    last_before_walks_back_over_pages_seen_forward,
    a_forged_cursor_is_bad_user_input_and_reaches_no_broker,
    page_size_over_the_maximum_is_bad_user_input,
    instruments_of_a_page_of_orders_cost_one_lookup_per_distinct_symbol,
    order_and_node_fetch_by_global_id_and_unknown_is_null,
    orders_filter_by_status_and_symbol,
);
