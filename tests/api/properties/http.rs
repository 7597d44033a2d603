//! The same hostile inputs through the real HTTP path (broker-sim and the gateway
//! from `spawn_app`), fewer cases: each is a round trip. Afterwards the gateway
//! still answers a normal query.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{hostile_string, runner};
use crate::common::{spawn_app, TestApp};

/// Every `extensions.code` docs/api.md documents.
const CODES: &[&str] = &[
    "BAD_USER_INPUT",
    "QUERY_TOO_COMPLEX",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "BROKER_ERROR",
    "BROKER_UNAVAILABLE",
    "IDEMPOTENCY_KEY_IN_USE",
    "OUTCOME_UNKNOWN",
];

/// One runtime and one gateway for every case of a test.
struct Harness {
    rt: tokio::runtime::Runtime,
    app: TestApp,
}

fn harness() -> Harness {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let app = rt.block_on(spawn_app());
    Harness { rt, app }
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").into())
                .collect()
        })
        .unwrap_or_default()
}

impl Harness {
    /// The gateway still answers a normal query with data.
    fn still_answers(&self) {
        let data = self
            .rt
            .block_on(self.app.data("{ account { cash } }", json!({})));
        assert!(data["account"]["cash"].is_string(), "{data}");
    }
}

#[test]
fn any_cursor_over_http_is_bad_user_input_with_no_broker_call() {
    let queries = [
        "query($c: String) { positions(first: 2, after: $c) { nodes { symbol } } }",
        "query($c: String) { orders(last: 2, before: $c) { nodes { id } } }",
        "query($c: String) { instruments(first: 1, after: $c) { nodes { symbol } } }",
    ];
    let h = harness();
    runner(120, 11)
        .run(&(hostile_string(), 0..3usize), |(cursor, q)| {
            h.rt.block_on(async {
                let before = h.app.broker_requests().await;
                let (status, body) = h.app.graphql_raw(queries[q], json!({ "c": cursor })).await;
                prop_assert_eq!(status, 200);
                prop_assert_eq!(codes(&body), vec!["BAD_USER_INPUT".to_string()], "{}", body);
                prop_assert_eq!(
                    h.app.broker_requests().await,
                    before,
                    "garbage reached the broker"
                );
                Ok(())
            })
        })
        .unwrap();
    h.still_answers();
}

#[test]
fn any_id_over_http_is_refused_or_looked_up() {
    let ids = prop_oneof![
        hostile_string(),
        (
            prop::sample::select(vec!["Order", "Instrument", "Position", "Account"]),
            any::<String>()
        )
            .prop_map(
                |(kind, local)| brokergraph::graphql::probe::encode_id(kind, &local).unwrap()
            ),
    ];
    let h = harness();
    runner(150, 12)
        .run(&ids, |id| {
            h.rt.block_on(async {
                let (status, body) = h
                    .app
                    .graphql_raw(
                        "query($id: ID!) { node(id: $id) { id } order(id: $id) { id } }",
                        json!({ "id": id }),
                    )
                    .await;
                prop_assert_eq!(status, 200);
                for code in codes(&body) {
                    // A random local id is not found (null), never a broker error.
                    prop_assert_eq!(code.as_str(), "BAD_USER_INPUT", "{}", body);
                }
                Ok(())
            })
        })
        .unwrap();
    h.still_answers();
}

/// What a client may put where a `Decimal` goes, as JSON.
fn decimal_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        hostile_string().prop_map(Value::from),
        "-?[0-9]{1,30}(\\.[0-9]{0,30})?".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}

#[test]
fn any_quantity_or_price_over_http_is_exact_or_refused_before_the_broker() {
    let h = harness();
    let orders_route = h.app.route("POST /v1/orders");
    runner(150, 13)
        .run(&(decimal_json(), decimal_json()), |(qty, price)| {
            h.rt.block_on(async {
                let posted = |stats: broker_sim::Stats| {
                    stats.requests.get(&orders_route).map_or(0, |m| m.values().sum::<u64>())
                };
                let before = posted(h.app.stats().await);
                let input = json!({ "input": { "idempotencyKey": uuid::Uuid::new_v4(),
                    "symbol": "NOPE", "side": "BUY", "type": "LIMIT",
                    "quantity": qty, "limitPrice": price } });
                let (status, body) = h
                    .app
                    .graphql_raw(
                        "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { userErrors { code } } }",
                        input,
                    )
                    .await;
                prop_assert_eq!(status, 200);
                let refused = codes(&body);
                if refused.is_empty() {
                    prop_assert!(body["data"]["submitOrder"]["userErrors"].is_array(), "{}", body);
                } else {
                    prop_assert_eq!(refused, vec!["BAD_USER_INPUT".to_string()], "{}", body);
                    prop_assert_eq!(posted(h.app.stats().await), before, "sent to the broker");
                }
                if qty.is_f64() || price.is_f64() {
                    prop_assert!(!body["errors"].is_null(), "a float was taken: {}", body);
                }
                Ok(())
            })
        })
        .unwrap();
    h.still_answers();
}

/// Arbitrary JSON, weighted towards objects that look like GraphQL requests.
fn json_body() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "\\{ *[a-z]{0,8} *[{}()$:!@ ]{0,8}[a-z]{0,8} *\\}?".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("query".to_string()),
                    Just("variables".to_string()),
                    Just("operationName".to_string()),
                    Just("extensions".to_string()),
                    any::<String>(),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("application/json".to_string()),
        Just("application/graphql-response+json".to_string()),
        Just("application/graphql".to_string()),
        Just("text/plain".to_string()),
        Just("multipart/form-data".to_string()),
        Just("multipart/form-data; boundary=x".to_string()),
        Just("application/x-www-form-urlencoded".to_string()),
        "[ -~]{0,40}",
    ])
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_body().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (json_body(), any::<usize>(), any::<u8>()).prop_map(|(v, at, b)| {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            let at = at % bytes.len();
            bytes[at] = b;
            bytes
        }),
    ]
}

#[test]
fn any_body_posted_to_graphql_gets_a_4xx_or_a_coded_error_never_a_500() {
    let h = harness();
    runner(400, 14)
        .run(&(body_bytes(), content_type()), |(body, ct)| {
            h.rt.block_on(async {
                let mut req = h.app.http.post(h.app.url("/graphql")).body(body.clone());
                if let Some(ct) = &ct {
                    req = req.header("content-type", ct.as_str());
                }
                let resp = req.send().await.expect("the gateway answers");
                let status = resp.status().as_u16();
                let text = resp.text().await.expect("a body");
                prop_assert!(
                    status == 200 || (400..500).contains(&status),
                    "{status}: {text}"
                );
                if let Ok(answer) = serde_json::from_str::<Value>(&text) {
                    for code in codes(&answer) {
                        prop_assert!(CODES.contains(&code.as_str()), "{status}: {text}");
                    }
                } else {
                    // Only a refusal before GraphQL may be anything but JSON.
                    prop_assert!(status >= 400, "{status}: {text}");
                }
                Ok(())
            })
        })
        .unwrap();
    h.still_answers();
}
