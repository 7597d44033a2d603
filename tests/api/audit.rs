//! The mutation audit log: one JSON line per attempt in `audit.file`,
//! written before the response arrives, for success, rejection (userErrors),
//! replay, OUTCOME_UNKNOWN and a read-only key.

use std::path::PathBuf;

use brokergraph::config::Scope;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{self, spawn_app_with, AppOptions, TestApp};

const SUBMIT: &str = r#"
mutation Submit($input: SubmitOrderInput!) {
  submitOrder(input: $input) { replayed order { brokerOrderId } userErrors { code } }
}"#;

fn audit_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "brokergraph-audit-test-{}.jsonl",
        std::process::id()
    ))
}

fn lines() -> Vec<Value> {
    std::fs::read_to_string(audit_path())
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn market(key: Uuid, symbol: &str, qty: &str) -> Value {
    json!({ "input": { "idempotencyKey": key, "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": qty } })
}

async fn symbol(app: &TestApp) -> String {
    let (symbol, _) = app
        .tradable_instruments()
        .await
        .into_iter()
        .find(|(_, lot)| lot == "1")
        .expect("a tradable instrument with lot size 1");
    app.sim.set_price(&symbol, "10.00").await;
    symbol
}

#[tokio::test]
async fn every_mutation_attempt_leaves_one_audit_line_before_its_response() {
    let _ = std::fs::remove_file(audit_path());
    let mut app = spawn_app_with(AppOptions {
        keys: vec![
            ("desk", "trade-key-1", vec![Scope::Read, Scope::Trade]),
            ("viewer", "read-key-1", vec![Scope::Read]),
        ],
        use_key: Some("trade-key-1"),
        tweak: |c| c.audit.file = Some(audit_path()),
        ..AppOptions::default()
    })
    .await;
    let symbol = symbol(&app).await;

    // Success, then its replay: each line is there as soon as the answer is.
    let key = Uuid::new_v4();
    let ok = app.data(SUBMIT, market(key, &symbol, "2")).await;
    let order_id = ok["submitOrder"]["order"]["brokerOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    let line = lines().pop().expect("a line for the submit");
    assert_eq!(line["mutation"], "submitOrder");
    assert_eq!(line["key_id"], "desk");
    assert_eq!(line["idempotency_key"], key.to_string());
    assert_eq!(line["outcome"], "OK");
    assert_eq!(line["broker_order_id"], order_id.as_str());
    assert_eq!(line["replayed"], false);
    assert_eq!(line["input"]["symbol"], symbol.as_str());
    assert_eq!(line["input"]["quantity"], "2");
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
    app.data(SUBMIT, market(key, &symbol, "2")).await;
    let line = lines().pop().unwrap();
    assert_eq!(
        (line["outcome"].clone(), line["replayed"].clone()),
        (json!("OK"), json!(true))
    );
    assert_eq!(line["broker_order_id"], order_id.as_str());

    // A business rejection: its userErrors code, no broker order.
    app.data(SUBMIT, market(Uuid::new_v4(), "NO-SUCH-SYMBOL", "1"))
        .await;
    let line = lines().pop().unwrap();
    assert_eq!(line["outcome"], "UNKNOWN_SYMBOL");
    assert_eq!(line["broker_order_id"], Value::Null);

    // The broker takes the order but no answer comes back, nor any read-back.
    app.sim
        .set_faults(json!({ "seed": 1, "rules": [
            { "route": app.route("POST /v1/orders"), "kind": "commit_then_fail", "rate": 1.0, "as": "503" },
            { "route": "*", "kind": "status", "status": 503, "rate": 1.0 }
        ]}))
        .await;
    let unknown_key = Uuid::new_v4();
    let body = app.graphql(SUBMIT, market(unknown_key, &symbol, "1")).await;
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ["OUTCOME_UNKNOWN", "BROKER_UNAVAILABLE"].contains(&code.as_str()),
        "{body}"
    );
    let line = lines().pop().unwrap();
    assert_eq!(line["outcome"], code.as_str());
    assert_eq!(line["idempotency_key"], unknown_key.to_string());
    app.sim.clear_faults().await;

    // A read-only key is refused, and that attempt is audited under its id.
    app.key = Some("read-key-1".into());
    let body = app
        .graphql(SUBMIT, market(Uuid::new_v4(), &symbol, "1"))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let line = lines().pop().unwrap();
    assert_eq!(
        (line["key_id"].clone(), line["outcome"].clone()),
        (json!("viewer"), json!("FORBIDDEN"))
    );

    assert_eq!(lines().len(), 5, "one line per attempt");
    let text = std::fs::read_to_string(audit_path()).unwrap();
    assert!(
        !text.contains("trade-key-1")
            && !text.contains("read-key-1")
            && !text.contains(common::SIM_KEY)
    );
    let _ = std::fs::remove_file(audit_path());
}
