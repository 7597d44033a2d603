//! Relay walks over orders, in both of broker-sim's dialects: the generic dialect's
//! cursors, and the cursors the Alpaca adapter synthesizes over time paging.

use std::collections::HashSet;

use broker_sim::Dialect;
use serde_json::json;

use crate::common::spawn_app_in;

/// Orders are paged by the broker's own cursors (Alpaca: synthesized over time
/// paging), so a walk sees every order exactly once, newest first.
async fn walking_orders_yields_each_exactly_once(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let symbols = app
        .tradable_instruments()
        .await
        .into_iter()
        .take(3)
        .collect::<Vec<_>>();
    let mut placed = HashSet::new();
    for i in 0..30 {
        let (symbol, lot) = &symbols[i % symbols.len()];
        let order = app.broker_buy(symbol, lot).await;
        placed.insert(order["id"].as_str().unwrap().to_string());
    }
    for n in [7, 30, 1] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let data = app
                .data(
                    "query($n: Int, $after: String) { orders(first: $n, after: $after) {
                        nodes { brokerOrderId createdAt } pageInfo { hasNextPage endCursor } } }",
                    json!({ "n": n, "after": after }),
                )
                .await;
            let conn = &data["orders"];
            for node in conn["nodes"].as_array().unwrap() {
                seen.push((
                    node["createdAt"].as_str().unwrap().to_string(),
                    node["brokerOrderId"].as_str().unwrap().to_string(),
                ));
            }
            if conn["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
        }
        let ids: HashSet<String> = seen.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(ids.len(), seen.len(), "no order twice at page size {n}");
        assert_eq!(ids, placed, "every order at page size {n}");
        let times: Vec<&String> = seen.iter().map(|(t, _)| t).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    }
}

crate::in_both_dialects!(walking_orders_yields_each_exactly_once);
