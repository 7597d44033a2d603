//! GraphiQL in a real browser: headless Chromium, driven through chromedriver,
//! opens `/graphql` on a gateway in front of broker-sim, runs the default query and
//! finds the account in the result pane. Only a browser proves that the embedded
//! assets load, that the CSP lets them run, and that no CDN is needed (this machine's
//! network is closed). A screenshot is left at `target/graphiql.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). When
//! they are missing the test fails, so a CI without a browser cannot pass by
//! accident; `BROKERGRAPH_SKIP_BROWSER=1` skips it on purpose.

// GraphiQL needs only an app and a look at the broker, a few of the shared helpers;
// the api binary uses them all.
#[allow(dead_code)]
mod common;
#[path = "browser/harness.rs"]
mod harness;

use std::time::Duration;

use brokergraph::config::Scope;
use common::{AppOptions, TestApp};
use fantoccini::Locator;
use serde_json::{json, Value};

const QUERY_EDITOR: &str = ".graphiql-query-editor .CodeMirror";
const RESULT: &str = ".result-window .CodeMirror";

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_runs_the_dashboard_query() {
    let Some(browser) = harness::browser().await else {
        return;
    };
    let client = &browser.client;
    let app = common::spawn_app().await;
    seed(&app).await;
    let account = app.broker_get("/v1/account").await;

    client.goto(&app.url("/graphql")).await.expect("page loads");
    let query = harness::editor_text(client, QUERY_EDITOR, "query Dashboard").await;
    assert!(query.contains("#     idempotencyKey: \""), "{query}");
    assert!(query.contains("no gateway API keys"), "{query}");
    harness::run(client).await;

    let text = harness::editor_text(client, RESULT, "accountNumber").await;
    let body: Value = serde_json::from_str(&text).expect("JSON result");
    assert!(body.get("errors").is_none(), "{body:#}");
    let shown = &body["data"]["account"];
    assert_eq!(
        shown["accountNumber"], account["account_number"],
        "{body:#}"
    );
    assert_eq!(shown["cash"], account["cash"], "{body:#}");
    let positions = body["data"]["positions"]["nodes"].as_array().unwrap();
    assert_eq!(positions.len(), 2, "{body:#}");
    assert!(positions
        .iter()
        .all(|p| p["instrument"]["name"].is_string()));
    assert_eq!(body["data"]["orders"]["nodes"].as_array().unwrap().len(), 3);

    // What a person sees, not only what the editor holds: CodeMirror draws only the
    // lines in view, so bring the account's into view first.
    let scroll = format!(
        "const cm = document.querySelector({RESULT:?}).CodeMirror; \
         const line = cm.getValue().split('\\n').findIndex(l => l.includes('accountNumber')); \
         cm.scrollIntoView({{ line: line + 8, ch: 0 }}); cm.scrollIntoView({{ line: Math.max(0, line - 2), ch: 0 }});"
    );
    client.execute(&scroll, vec![]).await.expect("scroll");
    let visible = client
        .find(Locator::Css(".result-window"))
        .await
        .expect("result pane")
        .text()
        .await
        .expect("text");
    let number = account["account_number"].as_str().unwrap();
    assert!(
        visible.contains("accountNumber") && visible.contains(number),
        "{visible}"
    );

    let png = client.screenshot().await.expect("screenshot");
    let path = harness::target_dir().join("graphiql.png");
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
    harness::assert_no_csp_violation(client).await;
    browser.close().await;
}

/// The default tab's `OrderUpdates` runs in the browser over graphql-transport-ws
/// (GraphiQL's own client, through the page's CSP): an order placed meanwhile shows
/// up in the result pane without re-running anything.
#[tokio::test(flavor = "multi_thread")]
async fn graphiql_runs_the_order_updates_subscription() {
    let Some(browser) = harness::browser().await else {
        return;
    };
    let client = &browser.client;
    let app = common::spawn_app().await;

    client.goto(&app.url("/graphql")).await.expect("page loads");
    let text = harness::editor_text(client, QUERY_EDITOR, "# subscription OrderUpdates").await;
    // The example, uncommented, alone in the editor (as a person would run it).
    let subscription: String = text[text.find("# subscription OrderUpdates").unwrap()..]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    // Only the subscription in the editor, so the run button needs no choice.
    let set =
        format!("document.querySelector({QUERY_EDITOR:?}).CodeMirror.setValue({subscription:?})");
    client.execute(&set, vec![]).await.expect("set the query");
    // GraphiQL learns the operation's name from the editor a moment later (the tab
    // title shows it); run before that and it sends the old name.
    harness::poll(
        client,
        "const t = document.querySelector('[role=tab][aria-selected=true]'); \
         return t && t.innerText.includes('OrderUpdates') ? true : null",
    )
    .await;
    harness::run(client).await;
    // A loaded machine takes its time to start the browser's socket.
    for _ in 0..600 {
        if app.sim.stats().await.streams.open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if app.sim.stats().await.streams.open != 1 {
        let page = client
            .execute("return document.body.innerText", vec![])
            .await;
        panic!("the subscription did not open the broker stream; the page shows {page:?}");
    }

    let (symbol, lot) = app.tradable_instruments().await[0].clone();
    let input = json!({
        "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol, "side": "BUY",
        "type": "MARKET", "quantity": lot,
    });
    let data = app
        .data(
            "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { order { id } userErrors { code } } }",
            json!({ "input": input }),
        )
        .await;
    let id = data["submitOrder"]["order"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = harness::editor_text(client, RESULT, "\"event\"").await;
    assert!(shown.contains(&id), "{shown}");
    harness::assert_no_csp_violation(client).await;
    browser.close().await;
}

/// With gateway keys the page opens the Headers editor with a placeholder; the
/// query is refused until a real key is put there, then runs.
#[tokio::test(flavor = "multi_thread")]
async fn with_keys_the_headers_editor_carries_the_key() {
    let Some(browser) = harness::browser().await else {
        return;
    };
    let client = &browser.client;
    let app = common::spawn_app_with(AppOptions {
        keys: vec![("desk", "desk-key", vec![Scope::Read])],
        use_key: Some("desk-key"),
        ..AppOptions::default()
    })
    .await;

    client.goto(&app.url("/graphql")).await.expect("page loads");
    let query = harness::editor_text(client, QUERY_EDITOR, "query Dashboard").await;
    assert!(query.contains("needs an API key"), "{query}");
    let headers = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
    harness::editor_text(client, headers, "Bearer <your gateway key>").await;

    harness::run(client).await;
    harness::editor_text(client, RESULT, "UNAUTHENTICATED").await;

    let set = format!(
        "document.querySelector({headers:?}).CodeMirror.setValue({:?})",
        r#"{ "Authorization": "Bearer desk-key" }"#
    );
    client.execute(&set, vec![]).await.expect("set the headers");
    harness::run(client).await;
    let text = harness::editor_text(client, RESULT, "accountNumber").await;
    let body: Value = serde_json::from_str(&text).expect("JSON result");
    assert!(body.get("errors").is_none(), "{body:#}");
    harness::assert_no_csp_violation(client).await;
    browser.close().await;
}

/// With JWT sessions (`[auth.jwt]`, a test IdP's JWKS on port 0) a signed-in user's
/// token in the Headers editor runs the dashboard on that user's account.
#[tokio::test(flavor = "multi_thread")]
async fn with_jwt_sessions_the_headers_editor_carries_the_token() {
    let Some(browser) = harness::browser().await else {
        return;
    };
    let client = &browser.client;
    let idp = common::idp::Idp::start().await;
    let url = idp.jwks_url();
    let app = common::spawn_app_with(AppOptions {
        configure: Some(Box::new(move |c| {
            c.auth.jwt = Some(common::idp::settings(url));
        })),
        ..AppOptions::default()
    })
    .await;
    let account = app.broker_get("/v1/account").await;

    client.goto(&app.url("/graphql")).await.expect("page loads");
    harness::editor_text(client, QUERY_EDITOR, "query Dashboard").await;
    let headers = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror";
    harness::editor_text(client, headers, "Authorization").await;
    harness::run(client).await;
    harness::editor_text(client, RESULT, "UNAUTHENTICATED").await;

    let token = idp.token("alice", "default");
    let set = format!(
        "document.querySelector({headers:?}).CodeMirror.setValue({:?})",
        format!(r#"{{ "Authorization": "Bearer {token}" }}"#)
    );
    client.execute(&set, vec![]).await.expect("set the headers");
    harness::run(client).await;
    let text = harness::editor_text(client, RESULT, "accountNumber").await;
    let body: Value = serde_json::from_str(&text).expect("JSON result");
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["account"]["accountNumber"],
        account["account_number"]
    );
    harness::assert_no_csp_violation(client).await;
    browser.close().await;
}

/// Two filled market orders and one resting limit order, so the dashboard (and the
/// README's screenshot) shows positions and orders with their instruments.
async fn seed(app: &TestApp) {
    let page = app.broker_get("/v1/instruments?limit=100").await;
    let symbols: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["tradable"] == json!(true) && i["lot_size"] == json!("1"))
        .take(2)
        .map(|i| i["symbol"].as_str().unwrap().to_string())
        .collect();
    app.sim.set_price(&symbols[0], "182.40").await;
    app.sim.set_price(&symbols[1], "41.05").await;
    let orders = [
        (&symbols[0], "MARKET", "25", None),
        (&symbols[1], "MARKET", "300", None),
        (&symbols[0], "LIMIT", "10", Some("150.00")),
    ];
    for (symbol, kind, quantity, limit) in orders {
        let input = json!({
            "idempotencyKey": uuid::Uuid::new_v4(), "symbol": symbol, "side": "BUY",
            "type": kind, "quantity": quantity, "limitPrice": limit,
        });
        let data = app
            .data(
                "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { userErrors { code } } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(data["submitOrder"]["userErrors"], json!([]), "{data:#}");
    }
    for _ in 0..100 {
        let positions = app.broker_get("/v1/positions").await;
        if positions["data"].as_array().is_some_and(|p| p.len() == 2) {
            return;
        }
        app.sim.tick(1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the seeded market orders never filled");
}
