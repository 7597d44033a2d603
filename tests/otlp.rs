//! OTLP trace export (feature `otlp`): the real binary, configured only through
//! `BROKERGRAPH_*` variables and a config file as an operator would, sends the spans
//! of a GraphQL request to a collector over OTLP/HTTP, flushes them on SIGTERM, and
//! exports neither the broker key nor the gateway key.
//!
//! Run with `cargo test --features otlp --test otlp`.
#![cfg(feature = "otlp")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const BROKER_KEY: &str = "BROKERKEY-otlp-9qq3z-do-not-export";
const GATEWAY_KEY: &str = "GATEWAYKEY-otlp-4rr8t-do-not-export";

/// One POST the collector received: its content type and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A stand-in OpenTelemetry collector: accepts `POST /v1/traces` and keeps the body.
async fn collector() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            store.lock().unwrap().push((content_type, body.to_vec()));
            StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

/// The binary with no inherited `BROKERGRAPH_*`, `OTEL_*` or `RUST_LOG`.
fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_brokergraph"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().to_string();
        if name.starts_with("BROKERGRAPH_") || name.starts_with("OTEL_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// With the exporter built in, a typo'd endpoint stops the process at start-up
/// (exit 2, one line naming the key) rather than failing every export later.
#[test]
fn the_endpoint_must_be_an_http_url() {
    let out = binary()
        .arg("check-config")
        .env("BROKERGRAPH_LOG_OTLP_ENDPOINT", "otel-collector:4318")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`log.otlp_endpoint`"), "{stderr}");
    assert!(stderr.contains("http://"), "{stderr}");

    let out = binary()
        .arg("check-config")
        .env(
            "BROKERGRAPH_LOG_OTLP_ENDPOINT",
            "http://otel-collector:4318",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("otlp_endpoint = \"http://otel-collector:4318\""),
        "{stdout}"
    );
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn spans_of_a_request_reach_the_collector_and_are_flushed_on_sigterm() {
    let sim = broker_sim::spawn(broker_sim::SimConfig {
        api_keys: vec![BROKER_KEY.into()],
        ..broker_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let (endpoint, received) = collector().await;
    let config = std::env::temp_dir().join(format!("otlp-test-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[[keys]]\nid = \"desk\"\nsha256 = \"{}\"\nscopes = [\"read\", \"trade\"]\n",
            brokergraph::auth::hash_key(GATEWAY_KEY)
        ),
    )
    .unwrap();

    let mut gateway = binary()
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("BROKERGRAPH_LISTEN", "127.0.0.1:0")
        .env("BROKERGRAPH_BROKER_URL", sim.base_url())
        .env("BROKERGRAPH_BROKER_API_KEY", BROKER_KEY)
        .env("BROKERGRAPH_LOG_FORMAT", "json")
        // The standard variables, as a platform injects them; OTEL_SERVICE_NAME
        // wins over the config's name.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_SERVICE_NAME", "brokergraph-otlp-test")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=otlp-ci")
        .env("BROKERGRAPH_LOG_OTLP_SERVICE_NAME", "not-this-name")
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");

    // The listening line says which port 0 became; the rest of stderr is drained
    // so the gateway never blocks on a full pipe.
    let mut lines = BufReader::new(gateway.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the gateway logs that it listens")
            .unwrap();
        assert!(!line.contains("OTLP"), "no export error: {line}");
        let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let fields = &event["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        if message.starts_with("brokergraph listening") {
            break fields["addr"].as_str().unwrap().to_string();
        }
    };
    let logs = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let resp: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(GATEWAY_KEY)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": "{ account { cash } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(resp["data"]["account"]["cash"].is_string(), "{resp}");

    // SIGTERM well inside the batch delay (5 s): the spans arrive because shutdown
    // flushes them, not because a timer fired.
    let status = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || gateway.wait().unwrap())
        .await
        .unwrap();
    let logs = logs.join().unwrap();
    assert!(
        exit.success(),
        "graceful exit: {exit:?}\n{}",
        logs.join("\n")
    );
    let _ = std::fs::remove_file(&config);

    let seen = sim.stats().await.last_traceparent.unwrap_or_default();
    let received = received.lock().unwrap();
    assert!(
        !received.is_empty(),
        "no POST /v1/traces\n{}",
        logs.join("\n")
    );
    let body: Vec<u8> = received.iter().flat_map(|(_, b)| b.clone()).collect();
    for (content_type, body) in received.iter() {
        assert_eq!(content_type, "application/x-protobuf");
        assert!(!body.is_empty());
    }
    // The broker call's span with its route, and the service it came from.
    assert!(
        contains(&body, "GET /v1/account"),
        "broker call span exported"
    );
    assert!(
        contains(&body, "brokergraph-otlp-test"),
        "service.name exported"
    );
    assert!(!contains(&body, "not-this-name"));
    assert!(
        contains(&body, "otlp-ci"),
        "OTEL_RESOURCE_ATTRIBUTES exported"
    );
    // The spans joined the client's trace (ids are bytes in protobuf), the broker
    // got a child of it, and the request's JSON log lines name it.
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&TRACE_ID[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(
        body.windows(16).any(|w| w == trace_bytes.as_slice()),
        "the client's trace id exported"
    );
    assert!(seen.contains(TRACE_ID), "the broker got the trace: {seen}");
    assert!(
        logs.iter()
            .any(|l| l.contains(&format!("\"trace_id\":\"{TRACE_ID}\""))),
        "a JSON log line names the trace\n{}",
        logs.join("\n")
    );
    for secret in [BROKER_KEY, GATEWAY_KEY] {
        assert!(!contains(&body, secret), "{secret} was exported");
    }
}
