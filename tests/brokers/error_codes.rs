//! Every broker failure a client can meet maps to its documented `extensions.code`
//! (docs/api.md, "Errors"). The broker is a wiremock server so each status is exact.

use std::time::Duration;

use brokergraph::config::Config;
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn gateway_over(mock: &MockServer) -> String {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.broker.url = Some(mock.uri());
    config.broker.api_key = Some(Secret::new("k"));
    config.broker.request_timeout = Duration::from_millis(200);
    let gateway = Gateway::bind(config).await.unwrap();
    let url = format!("http://{}/graphql", gateway.local_addr());
    tokio::spawn(gateway.run(std::future::pending()));
    url
}

async fn account_error(status: u16, body: Value, delay: Option<Duration>) -> Value {
    let mock = MockServer::start().await;
    let mut response = ResponseTemplate::new(status).set_body_json(body);
    if status == 429 {
        response = response.insert_header("Retry-After", "7");
    }
    if let Some(d) = delay {
        response = response.set_delay(d);
    }
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(response)
        .mount(&mock)
        .await;
    let url = gateway_over(&mock).await;
    let body: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": "{ account { cash } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["errors"][0].clone()
}

fn envelope(code: &str) -> Value {
    json!({ "error": { "code": code, "message": "no" } })
}

#[tokio::test]
async fn broker_401_is_broker_error_and_does_not_blame_the_client_key() {
    let err = account_error(401, envelope("unauthorized"), None).await;
    assert_eq!(err["extensions"]["code"], "BROKER_ERROR");
    assert!(err["message"].as_str().unwrap().contains("broker"));
}

#[tokio::test]
async fn broker_422_is_broker_error_with_its_message() {
    let err = account_error(422, envelope("account_locked"), None).await;
    assert_eq!(err["extensions"]["code"], "BROKER_ERROR");
}

#[tokio::test]
async fn broker_429_is_rate_limited_with_retry_after() {
    let err = account_error(429, envelope("rate_limited"), None).await;
    assert_eq!(err["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(err["extensions"]["retryAfterSeconds"], 7);
}

#[tokio::test]
async fn broker_503_is_broker_unavailable() {
    let err = account_error(503, envelope("unavailable"), None).await;
    assert_eq!(err["extensions"]["code"], "BROKER_UNAVAILABLE");
}

#[tokio::test]
async fn broker_timeout_is_broker_unavailable() {
    let err = account_error(200, json!({}), Some(Duration::from_secs(2))).await;
    assert_eq!(err["extensions"]["code"], "BROKER_UNAVAILABLE");
}

#[tokio::test]
async fn broker_garbage_is_broker_error_without_the_body() {
    let err = account_error(200, json!({ "secret_internal": "xyz" }), None).await;
    assert_eq!(err["extensions"]["code"], "BROKER_ERROR");
    assert!(!err.to_string().contains("xyz"));
}

#[tokio::test]
async fn broker_404_on_an_order_is_null_not_an_error() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/orders/o-1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(envelope("not_found")))
        .mount(&mock)
        .await;
    let url = gateway_over(&mock).await;
    let id = base64_url("Order:o-1");
    let body: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": "query($id: ID!) { order(id: $id) { id } }", "variables": { "id": id } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["order"], Value::Null);
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
