//! Query limits: the dashboard passes; deep, wide, aliased, oversized and
//! batched requests are refused before execution with the limit named.

use brokergraph::config::Scope;
use serde_json::{json, Value};

use crate::common::{spawn_app, spawn_app_with, AppOptions};

const DASHBOARD: &str = r#"
query Dashboard {
  account { id accountNumber status currency cash buyingPower equity asOf }
  positions(first: 20) {
    edges { cursor node { id symbol quantity averagePrice marketValue asOf
      instrument { symbol name tickSize lotSize tradable tradingHours { timezone open close } } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
  orders(first: 20) {
    nodes { id brokerOrderId symbol side type quantity filledQuantity limitPrice
      timeInForce status createdAt instrument { symbol name tickSize } }
  }
}"#;

fn first_error(body: &Value) -> (String, String) {
    let e = &body["errors"][0];
    (
        e["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        e["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn the_dashboard_query_passes_the_default_limits() {
    let app = spawn_app().await;
    let data = app.data(DASHBOARD, json!({})).await;
    assert!(data["positions"]["edges"].as_array().is_some());
}

#[tokio::test]
async fn a_1000_deep_query_is_refused_before_execution() {
    let app = spawn_app().await;
    let query = format!("{}{}", "{ account ".repeat(1000), "}".repeat(1000));
    let before = app.broker_requests().await;
    let (status, body) = app.graphql_raw(&query, json!({})).await;
    assert_eq!(status, 200);
    let (code, message) = first_error(&body);
    assert_eq!(code, "QUERY_TOO_COMPLEX", "{body:#}");
    assert!(message.contains("limits.max_depth"), "{message}");
    assert_eq!(app.broker_requests().await, before, "nothing executed");
}

#[tokio::test]
async fn a_query_just_over_the_depth_limit_names_it() {
    let app = spawn_app().await;
    // 13 levels of selection through the schema's real types.
    let query =
        "{ positions(first:1) { edges { node { instrument { tradingHours { timezone } } } } } }";
    app.data(query, json!({})).await;
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.limits.max_depth = 4,
        ..AppOptions::default()
    })
    .await;
    let (code, message) = first_error(&app.graphql(query, json!({})).await);
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(message.contains("limits.max_depth (4)"), "{message}");
}

#[tokio::test]
async fn ten_thousand_aliases_are_refused() {
    let app = spawn_app().await;
    let fields: String = (0..10_000)
        .map(|i| format!("a{i}: account {{ cash }} "))
        .collect();
    let before = app.broker_requests().await;
    let body = app.graphql(&format!("{{ {fields} }}"), json!({})).await;
    let (code, message) = first_error(&body);
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(message.contains("limits.max_aliases"), "{message}");
    assert_eq!(app.broker_requests().await, before, "nothing executed");
}

/// A GET query is checked for a mutation before the schema's limits run, so its
/// size is bounded first: a huge one is refused, not parsed.
#[tokio::test]
async fn a_huge_get_query_is_refused_with_a_pointer_to_post() {
    let app = spawn_app().await;
    let fields: String = (0..2_000)
        .map(|i| format!("a{i}: account {{ cash }} "))
        .collect();
    let query = format!("{{ {fields} }}");
    let url = reqwest::Url::parse_with_params(&app.url("/graphql"), &[("query", &query)]).unwrap();
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 414);
    let body: Value = response.json().await.unwrap();
    let (code, message) = first_error(&body);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("POST"), "{message}");
}

#[tokio::test]
async fn root_fields_and_complexity_are_limited() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| {
            c.limits.max_root_fields = 2;
            c.limits.max_complexity = 5;
        },
        ..AppOptions::default()
    })
    .await;
    let (code, message) = first_error(
        &app.graphql(
            "{ account { cash } instrument(symbol: \"X\") { symbol } a: account { cash } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(message.contains("limits.max_root_fields (2)"), "{message}");
    let (code, message) = first_error(
        &app.graphql(
            "{ account { id cash equity buyingPower currency status } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(code, "QUERY_TOO_COMPLEX");
    assert!(message.contains("limits.max_complexity (5)"), "{message}");
}

#[tokio::test]
async fn huge_variables_are_refused() {
    let app = spawn_app().await;
    let big = "x".repeat(100 * 1024);
    let (code, message) = first_error(
        &app.graphql(
            "query($s: String!) { instrument(symbol: $s) { symbol } }",
            json!({ "s": big }),
        )
        .await,
    );
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("limits.max_variables_bytes"), "{message}");
}

#[tokio::test]
async fn oversized_bodies_batches_and_garbage_get_a_coded_4xx() {
    let app = spawn_app().await;
    let post = |body: Vec<u8>, ct: &'static str| {
        app.http
            .post(app.url("/graphql"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let big = serde_json::to_vec(
        &json!({ "query": "{ account { cash } }", "variables": { "s": "x".repeat(10 << 20) } }),
    )
    .unwrap();
    let cases = [
        (big, "application/json", 413),
        (
            br#"[{"query":"{ account { cash } }"}]"#.to_vec(),
            "application/json",
            400,
        ),
        (b"{not json".to_vec(), "application/json", 400),
        (vec![0xff, 0xfe, 0x7b], "application/json", 400),
    ];
    for (body, ct, status) in cases {
        let resp = post(body, ct).await.expect("gateway answers");
        assert_eq!(resp.status().as_u16(), status);
        let body: Value = resp.json().await.expect("a JSON error body");
        assert_eq!(first_error(&body).0, "BAD_USER_INPUT");
    }
    // Still up and answering.
    app.data("{ account { cash } }", json!({})).await;
}

/// Documents are parsed and validated once and then reused (`graphql::documents`):
/// a document seen before is held to the limits, the variables' types and the
/// caller's scopes exactly like a new one.
#[tokio::test]
async fn a_document_seen_before_meets_the_limits_the_variables_and_the_scopes_again() {
    const READ: &str = "read-key-123";
    const TRADE: &str = "trade-key-456";
    let app = spawn_app_with(AppOptions {
        keys: vec![
            ("reader", READ, vec![Scope::Read]),
            ("trader", TRADE, vec![Scope::Read, Scope::Trade]),
        ],
        use_key: Some(TRADE),
        tweak: |c| {
            c.limits.max_complexity = 8;
            c.limits.max_depth = 4;
            c.limits.max_aliases = 2;
        },
        ..AppOptions::default()
    })
    .await;
    let before = app.broker_requests().await;
    for (query, limit) in [
        (
            "{ account { id accountNumber cash equity buyingPower currency status asOf } }",
            "limits.max_complexity (8)",
        ),
        (
            "{ positions(first:1) { edges { node { instrument { tradingHours { timezone } } } } } }",
            "limits.max_depth (4)",
        ),
        (
            "{ a: account { id } b: account { id } c: account { id } }",
            "limits.max_aliases (2)",
        ),
    ] {
        for attempt in 0..3 {
            let (code, message) = first_error(&app.graphql(query, json!({})).await);
            assert_eq!(code, "QUERY_TOO_COMPLEX", "attempt {attempt}: {query}");
            assert!(message.contains(limit), "attempt {attempt}: {message}");
        }
    }
    assert_eq!(app.broker_requests().await, before, "nothing executed");

    let orders = "query($first: Int) { orders(first: $first) { nodes { id } } }";
    app.data(orders, json!({ "first": 2 })).await;
    for attempt in 0..2 {
        let (status, body) = app.graphql_raw(orders, json!({ "first": "two" })).await;
        assert_eq!(status, 200);
        let (code, _) = first_error(&body);
        assert_eq!(
            code, "GRAPHQL_VALIDATION_FAILED",
            "attempt {attempt}: {body:#}"
        );
    }

    let cancel =
        r#"mutation { cancelOrder(input: { orderId: "T3JkZXI6eA" }) { userErrors { code } } }"#;
    let (_, body) = app.as_bearer(TRADE, cancel).await;
    assert_ne!(first_error(&body).0, "FORBIDDEN", "{body:#}");
    let (_, body) = app.as_bearer(READ, cancel).await;
    assert_eq!(first_error(&body).0, "FORBIDDEN", "{body:#}");
}
