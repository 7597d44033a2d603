//! Gateway API keys: who may read, who may trade.

use brokergraph::config::Scope;
use serde_json::json;

use crate::common::{spawn_app_with, AppOptions};

fn keyed(use_key: Option<&'static str>) -> AppOptions {
    AppOptions {
        keys: vec![
            ("reader", "read-key-123", vec![Scope::Read]),
            ("trader", "trade-key-456", vec![Scope::Read, Scope::Trade]),
        ],
        use_key,
        ..AppOptions::default()
    }
}

#[tokio::test]
async fn no_key_is_unauthenticated_when_keys_are_configured() {
    let app = spawn_app_with(keyed(None)).await;
    let (status, body) = app.graphql_raw("{ account { cash } }", json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(app.stats().await.count("GET /v1/account"), 0);
}

#[tokio::test]
async fn a_wrong_key_is_unauthenticated_and_not_echoed() {
    let app = spawn_app_with(keyed(Some("wrong-key-789"))).await;
    let (status, body) = app.graphql_raw("{ account { cash } }", json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(!body.to_string().contains("wrong-key-789"));
}

#[tokio::test]
async fn a_read_key_reads() {
    let app = spawn_app_with(keyed(Some("read-key-123"))).await;
    let data = app.data("{ account { cash } }", json!({})).await;
    assert!(data["account"]["cash"].is_string());
}

#[tokio::test]
async fn without_keys_loopback_callers_are_served() {
    let app = spawn_app_with(AppOptions::default()).await;
    let data = app.data("{ account { currency } }", json!({})).await;
    assert_eq!(data["account"]["currency"], "USD");
}
