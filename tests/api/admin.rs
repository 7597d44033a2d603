//! The admin API (`/admin/accounts`): a frontend's backend links a user's broker
//! account at run time; a JWT user on it can trade at once; unlinked, it is refused
//! at once and its subscriptions end; linked accounts survive a restart, sealed in
//! the token store. Bad calls are refused before anything reaches the broker.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::accounts::{two_account_options, SIM_KEY_B};
use crate::common::idp::{self, Idp};
use crate::common::ws::{Incoming, WsClient};
use crate::common::{spawn_app, spawn_app_with, AppOptions, TestApp, SIM_KEY};

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef0123456789";
const STORE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const WHO: &str = "{ account { id accountNumber } }";

fn store_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "brokergraph-admin-{name}-{}.enc",
        std::process::id()
    ))
}

/// `default` from the config, the admin API on, JWT sessions from `idp`.
async fn gateway(idp: &Idp, store: PathBuf) -> TestApp {
    let url = idp.jwks_url();
    spawn_app_with(AppOptions {
        configure: Some(Box::new(move |c| {
            c.auth.jwt = Some(idp::settings(url));
            c.admin.token = Some(brokergraph::secret::Secret::new(ADMIN_TOKEN));
            c.token_store.key = Some(brokergraph::secret::Secret::new(STORE_KEY));
            c.token_store.path = store;
        })),
        ..two_account_options()
    })
    .await
}

fn desk_b(app: &TestApp) -> Value {
    json!({ "broker": "generic", "url": app.sim.base_url(), "api_key": SIM_KEY_B })
}

async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn list(app: &TestApp) -> String {
    let (status, list) = admin(
        app,
        reqwest::Method::GET,
        "/admin/accounts",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list
}

async fn delete(app: &TestApp, id: &str) -> u16 {
    let path = format!("/admin/accounts/{id}");
    admin(app, reqwest::Method::DELETE, &path, Some(ADMIN_TOKEN), None)
        .await
        .0
}

async fn put(app: &TestApp, id: &str, body: &Value) -> (u16, String) {
    let path = format!("/admin/accounts/{id}");
    admin(
        app,
        reqwest::Method::PUT,
        &path,
        Some(ADMIN_TOKEN),
        Some(body.to_string()),
    )
    .await
}

fn code(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_default();
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn without_admin_token_there_is_no_admin_api() {
    let app = spawn_app().await;
    let (status, _) = admin(&app, reqwest::Method::GET, "/admin/accounts", None, None).await;
    assert_eq!(status, 404);
    let body = Some(json!({ "broker": "generic" }).to_string());
    let (status, _) = admin(
        &app,
        reqwest::Method::PUT,
        "/admin/accounts/x",
        Some("t"),
        body,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn admin_calls_without_or_with_a_wrong_token_are_refused() {
    let idp = Idp::start().await;
    let app = gateway(&idp, store_path("auth")).await;
    let before = app.broker_requests().await;
    for token in [
        None,
        Some("wrong-token"),
        Some(&idp.token("alice", "default")[..]),
    ] {
        for (method, path) in [
            (reqwest::Method::GET, "/admin/accounts"),
            (reqwest::Method::PUT, "/admin/accounts/desk-b"),
            (reqwest::Method::DELETE, "/admin/accounts/desk-b"),
        ] {
            let body = Some(desk_b(&app).to_string());
            let (status, text) = admin(&app, method.clone(), path, token, body).await;
            assert_eq!(status, 401, "{method} {path} {token:?}: {text}");
            assert_eq!(code(&text), "UNAUTHENTICATED", "{text}");
        }
    }
    // Nothing was linked, nothing reached the broker.
    let (status, _) = app.as_bearer(&idp.token("bob", "desk-b"), WHO).await;
    assert_eq!(status, 403);
    assert_eq!(app.broker_requests().await, before);
}

#[tokio::test]
async fn malformed_bodies_and_unknown_dialects_are_refused() {
    let idp = Idp::start().await;
    let app = gateway(&idp, store_path("bodies")).await;
    let before = app.broker_requests().await;
    let url = app.sim.base_url();
    let cases: Vec<(&str, String, &str)> = vec![
        ("desk-b", "not json".into(), "JSON"),
        ("desk-b", "[]".into(), "object"),
        (
            "desk-b",
            json!({ "broker": "robinhood", "url": url, "api_key": SIM_KEY_B }).to_string(),
            "broker",
        ),
        (
            "desk-b",
            json!({ "broker": "generic", "api_key": SIM_KEY_B }).to_string(),
            "url",
        ),
        (
            "desk-b",
            json!({ "broker": "generic", "url": url }).to_string(),
            "api_key",
        ),
        (
            "desk-b",
            json!({ "url": url, "api_key": SIM_KEY_B, "colour": "red" }).to_string(),
            "colour",
        ),
        (
            "desk-b",
            json!({ "id": "desk-c", "url": url, "api_key": SIM_KEY_B }).to_string(),
            "id",
        ),
        (
            "bad id!",
            json!({ "url": url, "api_key": SIM_KEY_B }).to_string(),
            "id",
        ),
        // The credentials of `default`: one broker account, two ids.
        (
            "desk-b",
            json!({ "url": url, "api_key": SIM_KEY }).to_string(),
            "same broker credentials",
        ),
    ];
    for (id, body, names) in cases {
        let path = format!("/admin/accounts/{}", id.replace(' ', "%20"));
        let (status, text) = admin(
            &app,
            reqwest::Method::PUT,
            &path,
            Some(ADMIN_TOKEN),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {text}");
        assert_eq!(code(&text), "BAD_USER_INPUT", "{text}");
        assert!(text.contains(names), "{body}: {text} names {names}");
        assert!(
            !text.contains(SIM_KEY_B) && !text.contains(SIM_KEY),
            "{text}"
        );
    }
    // The config file's accounts are changed there.
    let (status, text) = put(&app, "default", &desk_b(&app)).await;
    assert_eq!(status, 409, "{text}");
    let status = delete(&app, "default").await;
    assert_eq!(status, 409);
    let list = list(&app).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        list,
        json!({ "accounts": [{ "id": "default", "dialect": "generic", "linked": false }] })
    );
    assert_eq!(
        app.broker_requests().await,
        before,
        "nothing reached the broker"
    );
}

#[tokio::test]
async fn a_linked_account_serves_at_once_and_an_unlinked_one_is_refused_at_once() {
    let idp = Idp::start().await;
    let app = gateway(&idp, store_path("link")).await;
    let bob = idp.token("bob", "desk-b");
    let (status, _) = app.as_bearer(&bob, WHO).await;
    assert_eq!(status, 403, "not linked yet");

    let (status, text) = put(&app, "desk-b", &desk_b(&app)).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "id": "desk-b", "dialect": "generic" })
    );
    let list = list(&app).await;
    assert!(
        list.contains("\"desk-b\"") && !list.contains(SIM_KEY_B),
        "{list}"
    );

    let (status, b) = app.as_bearer(&bob, WHO).await;
    assert_eq!(status, 200, "{b}");
    let (_, a) = app.as_bearer(&idp.token("alice", "default"), WHO).await;
    assert_ne!(a["data"]["account"], b["data"]["account"], "{a} {b}");

    // Bob's live order updates, then the account is unlinked.
    let mut updates = WsClient::connect(app.addr, Some(&bob)).await;
    updates
        .subscribe("subscription { orderUpdates { event } }", json!({}))
        .await;
    wait_for_upstream(&app).await;
    let status = delete(&app, "desk-b").await;
    assert_eq!(status, 204);
    let before = app.broker_requests().await;
    let (status, body) = app.as_bearer(&bob, WHO).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        app.broker_requests().await,
        before,
        "nothing reached the broker"
    );
    assert!(
        matches!(updates.next().await, Incoming::Complete),
        "the subscription ends"
    );
    // Unlinking again: there is none.
    let status = delete(&app, "desk-b").await;
    assert_eq!(status, 404);
}

async fn wait_for_upstream(app: &TestApp) {
    for _ in 0..500 {
        if app.sim.stats().await.streams.open >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the subscription never opened the broker stream");
}

#[tokio::test]
async fn linked_accounts_survive_a_restart_sealed_in_the_token_store() {
    let idp = Idp::start().await;
    let store = store_path("restart");
    let _ = std::fs::remove_file(&store);
    let mut accounts_file = store.clone().into_os_string();
    accounts_file.push(".accounts");
    let _ = std::fs::remove_file(&accounts_file);
    let app = gateway(&idp, store.clone()).await;
    let (status, text) = put(&app, "desk-b", &desk_b(&app)).await;
    assert_eq!(status, 201, "{text}");

    let sealed = std::fs::read(&accounts_file).expect("the linked accounts are stored");
    let text = String::from_utf8_lossy(&sealed);
    assert!(
        !text.contains(SIM_KEY_B) && !text.contains("desk-b"),
        "sealed at rest"
    );

    // A new gateway on the same store (and broker) serves the account without
    // being told.
    let mut config = brokergraph::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.broker.url = Some(app.sim.base_url());
    config.broker.api_key = Some(brokergraph::secret::Secret::new(SIM_KEY));
    config.auth.jwt = Some(idp::settings(idp.jwks_url()));
    config.admin.token = Some(brokergraph::secret::Secret::new(ADMIN_TOKEN));
    config.token_store.key = Some(brokergraph::secret::Secret::new(STORE_KEY));
    config.token_store.path = store;
    let restarted = brokergraph::server::Gateway::bind(config).await.unwrap();
    let url = format!("http://{}/graphql", restarted.local_addr());
    tokio::spawn(restarted.run(std::future::pending()));
    let response = app
        .http
        .post(url)
        .bearer_auth(idp.token("bob", "desk-b"))
        .json(&json!({ "query": WHO }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let (_, b) = app.as_bearer(&idp.token("bob", "desk-b"), WHO).await;
    assert_eq!(body["data"], b["data"], "the same account on both");
}
