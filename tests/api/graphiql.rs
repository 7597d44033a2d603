//! The GraphiQL page and its assets over HTTP: security headers, caching, content
//! types, the `server.graphiql` switch. `tests/browser.rs` proves the page runs.

use brokergraph::config::Scope;
use reqwest::header::{HeaderMap, ACCEPT};

use crate::common::{spawn_app, spawn_app_with, AppOptions, TestApp};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; font-src 'self' data:; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'none'";

async fn get_page(app: &TestApp) -> reqwest::Response {
    app.http
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("gateway answers")
}

fn assert_hardened(headers: &HeaderMap) {
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
}

/// The asset URLs the page links, in order.
fn asset_urls(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter(|s| s.starts_with("graphiql/"))
        .map(|s| format!("/{s}"))
        .collect()
}

#[tokio::test]
async fn the_page_is_hardened_and_links_only_our_own_assets() {
    let app = spawn_app().await;
    let resp = get_page(&app).await;
    assert_eq!(resp.status(), 200);
    assert_hardened(resp.headers());
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let html = resp.text().await.unwrap();
    assert!(html.contains(r#"data-keys-configured="false""#), "{html}");
    assert!(
        !html.contains("://"),
        "no absolute URL, so no third party: {html}"
    );
    let urls = asset_urls(&html);
    assert_eq!(urls.len(), 9, "{urls:?}");

    for url in urls {
        let resp = app.http.get(app.url(&url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_hardened(resp.headers());
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let expected = match url.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(resp.headers()["content-type"], expected, "{url}");
        assert!(!resp.bytes().await.unwrap().is_empty(), "{url}");
    }
}

#[tokio::test]
async fn assets_are_gzipped_for_clients_that_accept_it() {
    let app = spawn_app().await;
    let html = get_page(&app).await.text().await.unwrap();
    let js = asset_urls(&html)
        .into_iter()
        .find(|u| u.ends_with("/graphiql.min.js"))
        .unwrap();
    let resp = app
        .http
        .get(app.url(&js))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_hardened(resp.headers());
    let size = resp.bytes().await.unwrap().len();
    assert!(size < 400_000, "gzipped graphiql.min.js is {size} bytes");
}

#[tokio::test]
async fn a_stale_or_unknown_asset_is_not_found() {
    let app = spawn_app().await;
    let html = get_page(&app).await.text().await.unwrap();
    let real = asset_urls(&html).into_iter().next().unwrap();
    let name = real.rsplit('/').next().unwrap();
    for url in [
        format!("/graphiql/0000000000000000/{name}"),
        real.replace(name, "nope.js"),
        real.replace(name, "..%2F..%2FCargo.toml"),
    ] {
        let resp = app.http.get(app.url(&url)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{url}");
    }
}

#[tokio::test]
async fn with_keys_configured_the_page_says_so() {
    let app = spawn_app_with(AppOptions {
        keys: vec![("ops", "secret-key", vec![Scope::Read])],
        use_key: Some("secret-key"),
        ..AppOptions::default()
    })
    .await;
    // The page needs no key: it holds none, and the key goes in its headers editor.
    let html = get_page(&app).await.text().await.unwrap();
    assert!(html.contains(r#"data-keys-configured="true""#), "{html}");
    assert!(!html.contains("secret-key"));
}

#[tokio::test]
async fn switched_off_there_is_no_page_and_no_asset() {
    let on = spawn_app().await;
    let assets = asset_urls(&get_page(&on).await.text().await.unwrap());
    let off = spawn_app_with(AppOptions {
        tweak: |c| c.server.graphiql = Some(false),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(get_page(&off).await.status(), 404);
    for url in assets {
        let resp = off.http.get(off.url(&url)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{url}");
    }
    // Queries by GET still work: only the browser page is off.
    let resp = off
        .http
        .get(off.url("/graphql?query=%7B%20account%20%7B%20cash%20%7D%20%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// The playground's trading tab, as a GraphQL document: the lines between its
/// markers in `playground.js`, with a fresh key where the page makes one.
fn trading_examples() -> String {
    let js = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/server/graphiql/playground.js"
    ))
    .expect("playground.js");
    let block = js
        .split("// trading-examples-start")
        .nth(1)
        .and_then(|rest| rest.split("// trading-examples-end").next())
        .expect("the trading examples are marked");
    let mut document = String::new();
    for line in block.lines().map(|l| l.trim().trim_end_matches(',')) {
        let text = if let Some(s) = line.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            s.replace("\\u25b6", "\u{25b6}")
        } else if let Some(s) = line.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
            s.replace("' + uuidV4() + '", &uuid::Uuid::new_v4().to_string())
        } else {
            continue;
        };
        document.push_str(&text);
        document.push('\n');
    }
    document
}

/// Every trading example runs as written once an order id and a symbol are put in,
/// so the tab cannot drift from the schema.
#[tokio::test]
async fn the_playgrounds_trading_examples_run() {
    let app = spawn_app().await;
    let (symbol, _) = app
        .tradable_instruments()
        .await
        .into_iter()
        .find(|(_, lot)| lot == "1")
        .expect("a lot-1 instrument");
    app.sim.set_price(&symbol, "10.00").await;
    app.broker_buy(&symbol, "20").await;
    let resting = app
        .data(
            "mutation($k: UUID!, $s: String!) { submitOrder(input: { idempotencyKey: $k, symbol: $s, \
             side: BUY, type: LIMIT, quantity: \"1\", limitPrice: \"5.00\", timeInForce: GTC }) { order { id } } }",
            serde_json::json!({ "k": uuid::Uuid::new_v4(), "s": symbol }),
        )
        .await;
    let order_id = resting["submitOrder"]["order"]["id"].as_str().unwrap();
    let document = trading_examples()
        .replace("ORDER_ID", order_id)
        .replace("SYMBOL", &symbol);
    for operation in [
        "ReplaceOrder",
        "SellAtTheClose",
        "CancelAllOrders",
        "ClosePosition",
    ] {
        let body: serde_json::Value = app
            .http
            .post(app.url("/graphql"))
            .json(&serde_json::json!({ "query": document, "operationName": operation }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{operation}: {body:#}");
        let payload = body["data"].as_object().unwrap().values().next().unwrap();
        assert_eq!(
            payload["userErrors"],
            serde_json::json!([]),
            "{operation}: {body:#}"
        );
    }
}
