//! Secrets: with a recognizable broker key and gateway keys, run the
//! representative scenarios (reads, submits, replays, rejections, wrong and missing
//! keys, a read key on a mutation, broker failures, rate limiting, limits, check-config
//! and `Debug` of the config) and grep every captured log line and response for them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use brokergraph::config::{Config, Scope};
use brokergraph::secret::Secret;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{sim_config, spawn_app_with, AppOptions, TestApp};

const BROKER_KEY: &str = "BROKERKEY-zq8m4x-do-not-leak";
const TRADE_KEY: &str = "GATEWAYKEY-trade-7hh2p-do-not-leak";
const READ_KEY: &str = "GATEWAYKEY-read-3kk9w-do-not-leak";
const WRONG_KEY: &str = "GATEWAYKEY-wrong-5vv1c-do-not-leak";
const SECRETS: [&str; 4] = [BROKER_KEY, TRADE_KEY, READ_KEY, WRONG_KEY];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("trace,h2=info,hyper=info,hyper_util=info,tokio=info,runtime=info")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        captured
    })
}

async fn send(
    app: &TestApp,
    key: Option<&str>,
    query: &str,
    variables: Value,
    seen: &mut Vec<String>,
) -> Value {
    let mut req = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("gateway answers");
    seen.push(format!("{:?}", resp.headers()));
    let text = resp.text().await.unwrap();
    seen.push(text.clone());
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

const SUBMIT: &str = "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { replayed order { id brokerOrderId status } userErrors { code message } } }";

#[tokio::test]
async fn no_secret_appears_in_any_log_line_or_response() {
    let logs = logs();
    let app = spawn_app_with(AppOptions {
        sim: broker_sim::SimConfig {
            api_keys: vec![BROKER_KEY.into()],
            ..sim_config()
        },
        keys: vec![
            ("desk", TRADE_KEY, vec![Scope::Read, Scope::Trade]),
            ("viewer", READ_KEY, vec![Scope::Read]),
        ],
        tweak: |c: &mut Config| {
            c.broker.api_key = Some(Secret::new(BROKER_KEY));
            c.rate_limit.burst = 40;
        },
        ..AppOptions::default()
    })
    .await;
    let mut seen = Vec::new();
    let list = send(
        &app,
        Some(READ_KEY),
        "{ instruments(first: 100) { nodes { symbol tradable lotSize } } }",
        json!({}),
        &mut seen,
    )
    .await;
    let symbol = list["data"]["instruments"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tradable"] == json!(true) && i["lotSize"] == json!("1"))
        .map(|i| i["symbol"].as_str().unwrap().to_string())
        .expect("a tradable instrument");
    app.sim.set_price(&symbol, "10.00").await;
    let dashboard = "{ account { cash } positions(first: 5) { nodes { symbol instrument { symbol } } } orders(first: 5) { nodes { id } } }";
    send(&app, Some(TRADE_KEY), dashboard, json!({}), &mut seen).await;
    let key = Uuid::new_v4();
    let order = json!({ "input": { "idempotencyKey": key, "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": "1" } });
    send(&app, Some(TRADE_KEY), SUBMIT, order.clone(), &mut seen).await;
    send(&app, Some(TRADE_KEY), SUBMIT, order, &mut seen).await;
    let bad = json!({ "input": { "idempotencyKey": Uuid::new_v4(), "symbol": "NOPE", "side": "BUY", "type": "LIMIT", "quantity": "1" } });
    send(&app, Some(TRADE_KEY), SUBMIT, bad.clone(), &mut seen).await;
    send(&app, Some(READ_KEY), SUBMIT, bad, &mut seen).await;
    send(&app, Some(WRONG_KEY), dashboard, json!({}), &mut seen).await;
    send(&app, None, dashboard, json!({}), &mut seen).await;
    send(&app, Some(TRADE_KEY), "{ nope }", json!({}), &mut seen).await;
    send(
        &app,
        Some(TRADE_KEY),
        &"{ account ".repeat(300),
        json!({}),
        &mut seen,
    )
    .await;
    // Broker failures: 401s, 500s and timeouts on every route.
    app.sim
        .set_faults(json!({ "seed": 3, "rules": [{ "route": "*", "kind": "status", "status": 401, "rate": 0.5 }, { "route": "*", "kind": "status", "status": 500, "rate": 1.0 }] }))
        .await;
    send(
        &app,
        Some(TRADE_KEY),
        "{ account { cash equity } }",
        json!({}),
        &mut seen,
    )
    .await;
    let order = json!({ "input": { "idempotencyKey": Uuid::new_v4(), "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": "1" } });
    send(&app, Some(TRADE_KEY), SUBMIT, order, &mut seen).await;
    app.sim.clear_faults().await;
    // Until the per-key limit answers 429.
    for _ in 0..45 {
        send(
            &app,
            Some(READ_KEY),
            "{ account { cash } }",
            json!({}),
            &mut seen,
        )
        .await;
    }
    assert!(
        seen.iter().any(|s| s.contains("RATE_LIMITED")),
        "the rate limit was reached"
    );
    seen.push(app.metrics().await);

    // The configuration as check-config and a debug log show it.
    let mut config = Config::default();
    config.broker.url = Some("http://127.0.0.1:1".into());
    config.broker.api_key = Some(Secret::new(BROKER_KEY));
    seen.push(format!("{config:?}"));
    seen.push(brokergraph::config::to_redacted_toml(
        &config,
        &Default::default(),
    ));

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("target=\"audit\"") || logged.contains("audit:"),
        "logs were captured"
    );
    for secret in SECRETS {
        assert!(!logged.contains(secret), "{secret} is in the logs");
        for (i, text) in seen.iter().enumerate() {
            assert!(
                !text.contains(secret),
                "{secret} is in response {i}: {text}"
            );
        }
    }
}
