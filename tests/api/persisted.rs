//! Persisted queries: Apollo APQ (hash miss → PersistedQueryNotFound, then
//! registered and served by hash) and the allow-list mode.

use std::path::PathBuf;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{spawn_app, spawn_app_with, AppOptions, TestApp};

const QUERY: &str = "query Cash { account { cash currency } }";

fn hash(query: &str) -> String {
    hex::encode(Sha256::digest(query.as_bytes()))
}

async fn post(app: &TestApp, body: Value) -> Value {
    app.http
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn by_hash(query: &str) -> Value {
    json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash(query) } } })
}

#[tokio::test]
async fn apq_miss_then_register_then_hit() {
    let app = spawn_app().await;
    let miss = post(&app, by_hash(QUERY)).await;
    assert_eq!(
        miss["errors"][0]["message"], "PersistedQueryNotFound",
        "{miss}"
    );
    let mut register = by_hash(QUERY);
    register["query"] = json!(QUERY);
    let first = post(&app, register).await;
    assert!(first["data"]["account"]["cash"].is_string(), "{first}");
    let hit = post(&app, by_hash(QUERY)).await;
    assert_eq!(
        hit["data"]["account"]["currency"],
        first["data"]["account"]["currency"]
    );
    // A wrong hash for the text is refused, not stored under the wrong name.
    let mut lie = by_hash("{ account { id } }");
    lie["query"] = json!(QUERY);
    assert!(post(&app, lie).await["errors"].is_array());
    // Registered queries obey the limits like any other.
    let deep = format!("{}{}", "{ account ".repeat(200), "}".repeat(200));
    let mut register = by_hash(&deep);
    register["query"] = json!(deep);
    let body = post(&app, register).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
}

fn allow_list_path() -> PathBuf {
    std::env::temp_dir().join(format!("bg-allow-list-{}.json", std::process::id()))
}

#[tokio::test]
async fn allow_list_mode_runs_only_registered_operations() {
    std::fs::write(allow_list_path(), serde_json::to_string(&[QUERY]).unwrap()).unwrap();
    let app = spawn_app_with(AppOptions {
        tweak: |c| c.persisted_queries.allow_list = Some(allow_list_path()),
        ..AppOptions::default()
    })
    .await;
    // By hash, and by the full text of a listed query.
    assert!(post(&app, by_hash(QUERY)).await["data"]["account"]["cash"].is_string());
    app.data(QUERY, json!({})).await;
    // Anything else, and registering through APQ, is refused, with Apollo's code
    // for an operation outside the list (FORBIDDEN before issue 22).
    assert_eq!(
        app.error_code("{ account { cash } }", json!({})).await,
        "PERSISTED_QUERY_NOT_IN_LIST"
    );
    let mut register = by_hash("{ account { id } }");
    register["query"] = json!("{ account { id } }");
    let body = post(&app, register).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_IN_LIST"
    );
    let _ = std::fs::remove_file(allow_list_path());
}
