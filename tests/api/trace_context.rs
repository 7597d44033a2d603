//! W3C trace context: a client's `traceparent` reaches the broker with the
//! client's trace id (as the parent of the broker call, not the client's own span),
//! and the trace id is in `extensions.traceId` of the errors it gets.

use serde_json::json;

use crate::common::spawn_app;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{CLIENT_SPAN}-01")
}

#[tokio::test]
async fn a_clients_traceparent_reaches_the_broker_call() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header("traceparent", traceparent())
        .json(&json!({ "query": "{ account { cash } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = app
        .stats()
        .await
        .last_traceparent
        .expect("a traceparent reached the broker");
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(parts.len(), 4, "{seen}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE_ID, "01"),
        "{seen}"
    );
    assert_ne!(
        parts[2], CLIENT_SPAN,
        "the gateway's call is a child, not the client's span"
    );
    assert_eq!(parts[2].len(), 16);
}

#[tokio::test]
async fn without_a_traceparent_the_broker_call_starts_a_trace_of_its_own() {
    let app = spawn_app().await;
    app.data("{ account { cash } }", json!({})).await;
    let seen = app
        .stats()
        .await
        .last_traceparent
        .expect("a traceparent reached the broker");
    assert!(
        seen.starts_with("00-") && !seen.contains(TRACE_ID),
        "{seen}"
    );
}

#[tokio::test]
async fn errors_name_the_trace_in_their_extensions() {
    let app = spawn_app().await;
    let send = |content_type: &'static str, body: serde_json::Value| {
        app.http
            .post(app.url("/graphql"))
            .header("traceparent", traceparent())
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
    };
    // An error from the schema, and a refusal before it.
    for (content_type, status) in [("application/json", 200), ("text/plain", 415)] {
        let resp = send(content_type, json!({ "query": "{ nope }" }))
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["traceId"], TRACE_ID,
            "{body}"
        );
    }
    // A malformed traceparent starts a new trace rather than failing the request.
    let resp = app
        .http
        .post(app.url("/graphql"))
        .header("traceparent", "00-nothex-00-01")
        .json(&json!({ "query": "{ nope }" }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    let trace_id = body["errors"][0]["extensions"]["traceId"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, TRACE_ID);
}
