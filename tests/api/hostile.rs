//! Property-style hostile input (in place of cargo-fuzz): random strings as
//! cursors, Decimals and ids always get a clean coded answer, never a panic or 500.

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common;

fn random_string(rng: &mut rand::rngs::StdRng) -> String {
    let len = rng.gen_range(0..64);
    match rng.gen_range(0..3) {
        0 => (0..len).map(|_| rng.gen::<char>()).collect(),
        1 => (0..len)
            .map(|_| rng.gen_range(0x20u8..0x7f) as char)
            .collect(),
        _ => {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.e+";
            (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
                .collect()
        }
    }
}

fn code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn random_cursors_decimals_and_ids_get_clean_errors() {
    let app = common::spawn_app().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for _ in 0..150 {
        let s = random_string(&mut rng);
        let (status, body) = app
            .graphql_raw(
                "query($c: String) { positions(first: 2, after: $c) { nodes { symbol } } }",
                json!({ "c": s }),
            )
            .await;
        assert_eq!(status, 200, "{s:?}: {body}");
        if body.get("errors").is_some() {
            assert_eq!(
                code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{s:?}: {body}"
            );
        }
        let (status, body) = app
            .graphql_raw(
                "query($id: ID!) { node(id: $id) { id } order(id: $id) { id } }",
                json!({ "id": s }),
            )
            .await;
        assert_eq!(status, 200, "{s:?}: {body}");
        if let Some(c) = code(&body) {
            assert!(
                ["BAD_USER_INPUT", "BROKER_ERROR"].contains(&c.as_str()),
                "{s:?}: {body}"
            );
        }
        let input = json!({ "input": { "idempotencyKey": uuid::Uuid::new_v4(), "symbol": "X",
            "side": "BUY", "type": "LIMIT", "quantity": s, "limitPrice": s } });
        let (status, body) = app
            .graphql_raw("mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { userErrors { code } } }", input)
            .await;
        assert_eq!(status, 200, "{s:?}: {body}");
        assert!(
            code(&body).as_deref() == Some("BAD_USER_INPUT")
                || body["data"]["submitOrder"]["userErrors"].is_array(),
            "{s:?}: {body}"
        );
    }
    // Still up.
    app.data("{ account { cash } }", json!({})).await;
}

/// A web page can POST `text/plain`, form and multipart bodies to loopback without
/// a CORS preflight; the gateway read them as JSON and ran them, so any page a
/// developer visited could place an order through a keyless local gateway.
#[tokio::test]
async fn a_mutation_posted_as_a_simple_cross_site_type_is_refused_and_places_nothing() {
    let app = common::spawn_app().await;
    let (symbol, lot) = app.tradable_instruments().await.remove(0);
    let mutation = json!({ "query": format!(
        "mutation {{ submitOrder(input: {{ idempotencyKey: \"{}\", symbol: \"{symbol}\", \
         side: BUY, type: MARKET, quantity: \"{lot}\" }}) {{ order {{ id }} }} }}",
        uuid::Uuid::new_v4()
    ) });
    let orders = app.route("POST /v1/orders");
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut req = app
            .http
            .post(app.url("/graphql"))
            .body(mutation.to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("gateway answers");
        assert_eq!(resp.status().as_u16(), 415, "{content_type:?}");
        let body: Value = resp.json().await.expect("a JSON error");
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    }
    let stats = app.stats().await;
    assert!(!stats.requests.contains_key(&orders), "an order was sent");
    // The same request as JSON is what a real client sends, and it places the order.
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json; charset=utf-8")
        .body(mutation.to_string())
        .send()
        .await
        .expect("gateway answers");
    let body: Value = resp.json().await.expect("JSON");
    assert!(
        body["data"]["submitOrder"]["order"]["id"].is_string(),
        "{body}"
    );
}
