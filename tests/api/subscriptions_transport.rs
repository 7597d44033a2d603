//! The subscription transports of the real gateway, over real sockets: a
//! tungstenite client speaking graphql-transport-ws frame by frame, and reqwest
//! reading SSE. Queries and mutations over a socket answer as over HTTP (keys,
//! scopes, limits, codes); the protocol's refusals close with its codes. (The
//! protocol against a ticking subscription is tested in `src/server/ws.rs`.)

use std::time::Duration;

use brokergraph::config::Scope;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::common::{spawn_app, spawn_app_with, AppOptions, TestApp};

/// Guards every read, so that a broken gateway fails a test instead of hanging it.
const GUARD: Duration = Duration::from_secs(20);

const SUBMIT: &str = r#"
mutation($input: SubmitOrderInput!) {
  submitOrder(input: $input) { order { brokerOrderId status } userErrors { code } }
}"#;

fn keyed() -> AppOptions {
    AppOptions {
        keys: vec![
            ("reader", "read-key-123", vec![Scope::Read]),
            ("trader", "trade-key-456", vec![Scope::Read, Scope::Trade]),
        ],
        ..AppOptions::default()
    }
}

struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

fn upgrade(
    app: &TestApp,
    headers: &[(&'static str, &str)],
) -> tungstenite::handshake::client::Request {
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    request
}

async fn open(app: &TestApp, headers: &[(&'static str, &str)]) -> Socket {
    let (ws, response) = tokio_tungstenite::connect_async(upgrade(app, headers))
        .await
        .expect("the gateway upgrades");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    Socket { ws }
}

/// The HTTP answer to an upgrade the gateway refuses: status and JSON body.
async fn refused(app: &TestApp, headers: &[(&'static str, &str)]) -> (u16, Value) {
    match tokio_tungstenite::connect_async(upgrade(app, headers)).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                serde_json::from_slice(&body).expect("a JSON body"),
            )
        }
        other => panic!("expected a refused upgrade, got {:?}", other.map(|_| ())),
    }
}

/// Open and acknowledged, with `key` in the `connection_init` payload.
async fn ready(app: &TestApp, key: Option<&str>) -> Socket {
    let mut socket = open(app, &[]).await;
    let payload = key.map_or(
        json!({}),
        |k| json!({ "Authorization": format!("Bearer {k}") }),
    );
    socket
        .send(json!({ "type": "connection_init", "payload": payload }))
        .await;
    assert_eq!(socket.recv().await, json!({ "type": "connection_ack" }));
    socket
}

impl Socket {
    async fn send(&mut self, message: Value) {
        self.ws
            .send(Frame::Text(message.to_string().into()))
            .await
            .expect("the socket takes a frame");
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "type": "subscribe", "id": id,
            "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message, the server's pings answered.
    async fn recv(&mut self) -> Value {
        loop {
            match self.frame().await {
                Frame::Text(text) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON");
                    if message["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return message;
                }
                Frame::Close(frame) => panic!("closed while a message was expected: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The one result of a query or mutation, after checking that `complete` follows.
    async fn answer(&mut self, id: &str) -> Value {
        let next = self.recv().await;
        assert_eq!(
            (&next["type"], &next["id"]),
            (&json!("next"), &json!(id)),
            "{next}"
        );
        assert_eq!(self.recv().await, json!({ "type": "complete", "id": id }));
        next["payload"].clone()
    }

    async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Frame::Close(frame) = self.frame().await {
                let frame = frame.expect("a close code");
                return (u16::from(frame.code), frame.reason.to_string());
            }
        }
    }

    async fn frame(&mut self) -> Frame {
        tokio::time::timeout(GUARD, self.ws.next())
            .await
            .expect("the gateway answers in time")
            .expect("the socket is open")
            .expect("a frame")
    }
}

#[tokio::test]
async fn a_query_over_the_socket_answers_as_over_http() {
    let app = spawn_app().await;
    let query = "{ account { currency } instruments(first: 2) { nodes { symbol } } }";
    let mut socket = ready(&app, None).await;
    socket.subscribe("q", query, json!({})).await;
    let payload = socket.answer("q").await;
    assert_eq!(payload["data"], app.data(query, json!({})).await);
    // The socket stays usable for more.
    socket
        .subscribe("q", "{ account { currency } }", json!({}))
        .await;
    assert_eq!(
        socket.answer("q").await["data"]["account"]["currency"],
        "USD"
    );
}

#[tokio::test]
async fn a_key_in_the_init_payload_or_the_upgrade_header_authenticates() {
    let app = spawn_app_with(keyed()).await;
    let query = "{ account { currency } }";
    let mut socket = ready(&app, Some("read-key-123")).await;
    socket.subscribe("1", query, json!({})).await;
    assert_eq!(
        socket.answer("1").await["data"]["account"]["currency"],
        "USD"
    );

    let mut socket = open(&app, &[("authorization", "Bearer read-key-123")]).await;
    socket.send(json!({ "type": "connection_init" })).await;
    assert_eq!(socket.recv().await["type"], "connection_ack");
    socket.subscribe("1", query, json!({})).await;
    assert_eq!(
        socket.answer("1").await["data"]["account"]["currency"],
        "USD"
    );
}

#[tokio::test]
async fn an_unknown_or_missing_key_is_closed_with_4403() {
    let app = spawn_app_with(keyed()).await;
    for payload in [json!({ "Authorization": "Bearer nope" }), json!({})] {
        let mut socket = open(&app, &[]).await;
        socket
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        let (code, reason) = socket.closed().await;
        assert_eq!(code, 4403, "{payload}");
        assert!(!reason.contains("nope"), "the key is not echoed: {reason}");
    }
    assert_eq!(app.broker_requests().await, 0);
}

#[tokio::test]
async fn a_read_key_is_forbidden_to_submit_over_the_socket_as_over_http() {
    let mut options = keyed();
    options.use_key = Some("read-key-123");
    let app = spawn_app_with(options).await;
    let (symbol, _) = app.tradable_instruments().await.remove(0);
    let input = |key: Uuid| {
        json!({ "input": { "idempotencyKey": key, "symbol": symbol, "side": "BUY",
            "type": "MARKET", "quantity": "1" } })
    };
    let http = app.error_code(SUBMIT, input(Uuid::new_v4())).await;
    let mut socket = ready(&app, Some("read-key-123")).await;
    socket.subscribe("m", SUBMIT, input(Uuid::new_v4())).await;
    let payload = socket.answer("m").await;
    assert_eq!(payload["errors"][0]["extensions"]["code"], json!(http));
    assert_eq!(http, "FORBIDDEN");
    assert_eq!(app.stats().await.count(&app.route("POST /v1/orders")), 0);
}

#[tokio::test]
async fn a_trade_key_submits_an_order_over_the_socket() {
    let app = spawn_app_with(keyed()).await;
    let (symbol, lot) = app.tradable_instruments().await.remove(0);
    let mut socket = ready(&app, Some("trade-key-456")).await;
    let input = json!({ "input": { "idempotencyKey": Uuid::new_v4(), "symbol": symbol,
        "side": "BUY", "type": "MARKET", "quantity": lot } });
    socket.subscribe("m", SUBMIT, input).await;
    let payload = socket.answer("m").await;
    let order = &payload["data"]["submitOrder"]["order"];
    assert!(order["brokerOrderId"].is_string(), "{payload:#}");
    assert_eq!(app.stats().await.count(&app.route("POST /v1/orders")), 1);
}

#[tokio::test]
async fn a_too_deep_query_gets_the_code_it_gets_over_http() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.limits.max_depth = 4,
        ..AppOptions::default()
    })
    .await;
    let query =
        "{ positions(first:1) { edges { node { instrument { tradingHours { timezone } } } } } }";
    let http = app.error_code(query, json!({})).await;
    assert_eq!(http, "QUERY_TOO_COMPLEX");
    let mut socket = ready(&app, None).await;
    socket.subscribe("deep", query, json!({})).await;
    // Refused before execution: an `error` message, which ends the operation.
    let error = socket.recv().await;
    assert_eq!(
        (&error["type"], &error["id"]),
        (&json!("error"), &json!("deep"))
    );
    assert_eq!(error["payload"][0]["extensions"]["code"], json!(http));
    assert_eq!(app.broker_requests().await, 0);
}

#[tokio::test]
async fn each_operation_over_the_socket_takes_a_token_of_the_keys_rate_limit() {
    let mut options = keyed();
    options.tweak = |c| {
        c.rate_limit.per_minute = 1;
        c.rate_limit.burst = 3;
    };
    let app = spawn_app_with(options).await;
    // The key comes with connection_init, so the upgrade took no token; three
    // operations take the burst.
    let mut socket = ready(&app, Some("read-key-123")).await;
    for id in ["1", "2", "3"] {
        socket
            .subscribe(id, "{ account { currency } }", json!({}))
            .await;
        assert!(socket.answer(id).await["data"].is_object());
    }
    socket
        .subscribe("4", "{ account { currency } }", json!({}))
        .await;
    let error = socket.recv().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(error["payload"][0]["extensions"]["retryAfterSeconds"].is_u64());
}

#[tokio::test]
async fn subscribe_before_connection_init_is_closed_with_4401() {
    let app = spawn_app().await;
    let mut socket = open(&app, &[]).await;
    socket
        .subscribe("1", "{ account { currency } }", json!({}))
        .await;
    assert_eq!(socket.closed().await.0, 4401);
    assert_eq!(app.broker_requests().await, 0);
}

#[tokio::test]
async fn no_connection_init_within_the_init_timeout_is_closed_with_4408() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.subscriptions.init_timeout = Duration::from_millis(200),
        ..AppOptions::default()
    })
    .await;
    let mut socket = open(&app, &[]).await;
    assert_eq!(
        socket.closed().await,
        (4408, "Connection initialisation timeout".to_string())
    );
}

#[tokio::test]
async fn a_second_operation_with_a_running_id_is_closed_with_4409() {
    let app = spawn_app().await;
    let account = app.route("GET /v1/account");
    app.sim
        .set_faults(json!({ "rules": [{ "route": account, "kind": "hang" }] }))
        .await;
    let mut socket = ready(&app, None).await;
    socket
        .subscribe("x", "{ account { cash } }", json!({}))
        .await;
    socket
        .subscribe("x", "{ account { cash } }", json!({}))
        .await;
    assert_eq!(
        socket.closed().await,
        (4409, "Subscriber for x already exists".to_string())
    );
}

#[tokio::test]
async fn a_foreign_browser_origin_may_not_open_a_socket() {
    let app = spawn_app().await;
    let (status, body) = refused(&app, &[("origin", "https://evil.example")]).await;
    assert_eq!(status, 403);
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // The gateway's own pages may (GraphiQL).
    let own = format!("http://{}", app.addr);
    let mut socket = open(&app, &[("origin", own.as_str())]).await;
    socket.send(json!({ "type": "connection_init" })).await;
    assert_eq!(socket.recv().await["type"], "connection_ack");
}

/// `(event, data)` of each event of an SSE body; comment lines skipped.
fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .filter_map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                }
            }
            Some((event?, data.join("\n")))
        })
        .collect()
}

async fn sse(app: &TestApp, key: Option<&str>, query: &str) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query }));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("the gateway answers")
}

#[tokio::test]
async fn sse_carries_a_querys_result_as_next_then_complete() {
    let app = spawn_app().await;
    let query = "{ account { currency } }";
    let response = sse(&app, None, query).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "next");
    let payload: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(payload["data"], app.data(query, json!({})).await);
    assert_eq!(events[1], ("complete".to_string(), String::new()));

    // Validation errors come as a `next` on the accepted stream, with the code
    // they have over HTTP.
    let response = sse(&app, None, "{ nope }").await;
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    let payload: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(
        payload["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(events[1].0, "complete");
}

#[tokio::test]
async fn sse_refuses_before_streaming_as_http_does() {
    let app = spawn_app_with(keyed()).await;
    let response = sse(&app, Some("wrong"), "{ account { currency } }").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ account { currency } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = sse(&app, Some("read-key-123"), "{ account { currency } }").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn turned_off_subscriptions_refuse_both_transports_with_a_code() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.subscriptions.enabled = false,
        ..AppOptions::default()
    })
    .await;
    let (status, body) = refused(&app, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("subscriptions.enabled"));
    let response = sse(&app, None, "{ account { currency } }").await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // Plain GraphQL over HTTP is not affected.
    app.data("{ account { currency } }", json!({})).await;
}

#[tokio::test]
async fn a_subscription_the_schema_refuses_is_coded_on_both_transports() {
    let app = spawn_app().await;
    let query = "subscription { noSuchField }";
    let mut socket = ready(&app, None).await;
    socket.subscribe("s", query, json!({})).await;
    let error = socket.recv().await;
    assert_eq!(
        (&error["type"], &error["id"]),
        (&json!("error"), &json!("s"))
    );
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(error["payload"].as_array().unwrap().len(), 1, "one error");

    let response = sse(&app, None, query).await;
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    let payload: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(
        payload["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(payload["errors"].as_array().unwrap().len(), 1, "one error");
    assert_eq!(events[1].0, "complete");
}

#[tokio::test]
async fn a_quiet_sse_stream_gets_a_comment_every_ping_interval() {
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.subscriptions.ping = Duration::from_millis(100),
        ..AppOptions::default()
    })
    .await;
    let account = app.route("GET /v1/account");
    app.sim
        .set_faults(json!({ "rules": [{ "route": account, "kind": "hang" }] }))
        .await;
    let mut response = sse(&app, None, "{ account { cash } }").await;
    assert_eq!(response.status(), 200);
    let mut comments = 0;
    while comments < 2 {
        let chunk = tokio::time::timeout(GUARD, response.chunk())
            .await
            .expect("a keep-alive in time")
            .expect("the stream is open")
            .expect("a chunk");
        let text = String::from_utf8_lossy(&chunk);
        assert!(!text.contains("event:"), "{text}");
        comments += text.lines().filter(|l| l.starts_with(':')).count();
    }
}
