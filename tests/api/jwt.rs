//! JWT sessions (`[auth.jwt]`): a test IdP (key pairs made here, JWKS on port 0)
//! signs tokens for two users on two accounts. Each sees only its own account over
//! HTTP, WebSocket and SSE; every bad token is refused before anything reaches the
//! broker; a socket or stream ends when its token expires.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::accounts::{
    add_desk_b, one_account_never_sees_the_others_data, order_updates_never_cross_accounts,
    persisted_queries_never_cross_accounts, two_account_options,
};
use crate::common::idp::{self, claims, now, unsigned, Idp, Serving};
use crate::common::ws::{WsClient, PATIENCE};
use crate::common::{spawn_app_with, AppOptions, TestApp};
use crate::operations::preflight;

const WHO: &str = "{ account { id accountNumber } }";

/// The gateway with `default` and `desk-b`, no gateway keys, JWT sessions from
/// `jwks_url` (leeway 0, so expiry is exact in the tests that wait for it).
async fn gateway(jwks_url: String) -> TestApp {
    spawn_app_with(AppOptions {
        tweak: add_desk_b,
        configure: Some(Box::new(move |c| {
            let mut jwt = idp::settings(jwks_url);
            jwt.jwks_timeout = Duration::from_millis(500);
            jwt.leeway = Duration::ZERO;
            c.auth.jwt = Some(jwt);
        })),
        ..two_account_options()
    })
    .await
}

/// `token` is refused with `code` over HTTP, and the broker heard nothing of it.
async fn refused(app: &TestApp, token: &str, status: u16, code: &str) {
    let before = app.broker_requests().await;
    let (got, body) = app.as_bearer(token, WHO).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    assert_eq!(
        app.broker_requests().await,
        before,
        "nothing reached the broker"
    );
}

#[tokio::test]
async fn two_users_on_two_accounts_each_see_only_their_own_over_http() {
    let idp = Idp::start().await;
    let mut app = gateway(idp.jwks_url()).await;
    let (alice, bob) = (idp.token("alice", "default"), idp.token("bob", "desk-b"));
    one_account_never_sees_the_others_data(&mut app, &alice, &bob).await;
    persisted_queries_never_cross_accounts(&mut app, &alice, &bob).await;
}

#[tokio::test]
async fn two_users_on_two_accounts_each_see_only_their_own_over_websocket() {
    let idp = Idp::start().await;
    let mut app = gateway(idp.jwks_url()).await;
    let (alice, bob) = (idp.token("alice", "default"), idp.token("bob", "desk-b"));
    order_updates_never_cross_accounts(&mut app, &alice, &bob).await;
}

#[tokio::test]
async fn two_users_on_two_accounts_each_see_only_their_own_over_sse() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let (alice, bob) = (idp.token("alice", "default"), idp.token("bob", "desk-b"));
    let (_, a) = app.as_bearer(&alice, WHO).await;
    let (_, b) = app.as_bearer(&bob, WHO).await;
    assert_ne!(a["data"]["account"], b["data"]["account"]);
    for (token, expected) in [(&alice, &a), (&bob, &b)] {
        let events = sse(&app, token, WHO).await;
        let first = events.first().expect("a next event");
        assert_eq!(first["data"], expected["data"], "{events:?}");
    }
}

/// Every event's payload of an SSE request, until the stream ends.
async fn sse(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(PATIENCE, response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect()
}

#[tokio::test]
async fn es256_and_eddsa_tokens_are_accepted_and_scopes_come_from_the_claim() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    for key in [&idp.es256, &idp.ed25519] {
        let (status, body) = app
            .as_bearer(&idp.sign(key, &claims("carol", "default")), WHO)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["account"]["id"].is_string(), "{body}");
    }
    // A reader cannot trade: the scope claim says so.
    let mut reader = claims("dave", "default");
    reader["scope"] = json!("read");
    let cancel =
        r#"mutation { cancelOrder(input: { orderId: "T3JkZXI6eA" }) { userErrors { code } } }"#;
    let (_, body) = app.as_bearer(&idp.sign(idp.rsa, &reader), cancel).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    refused(
        &app,
        &unsigned(&claims("mallory", "default")),
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    // The classic key confusion: the RSA public key (which anyone may fetch) used
    // as an HMAC secret, under the RSA key's kid.
    let public = idp.rsa.public_pem.as_ref().unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(idp.rsa.kid.to_string());
    let secret = EncodingKey::from_secret(public.as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims("mallory", "default"), &secret).unwrap();
    refused(&app, &token, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    for (claim, value) in [("iss", "https://evil.test"), ("aud", "another-app")] {
        let mut c = claims("mallory", "default");
        c[claim] = json!(value);
        refused(&app, &idp.sign(idp.rsa, &c), 401, "UNAUTHENTICATED").await;
    }
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let mut c = claims("alice", "default");
    c["exp"] = json!(now() - 120);
    refused(&app, &idp.sign(idp.rsa, &c), 401, "UNAUTHENTICATED").await;
    // `exp` is required.
    c.as_object_mut().unwrap().remove("exp");
    refused(&app, &idp.sign(idp.rsa, &c), 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let mut c = claims("alice", "default");
    c["nbf"] = json!(now() + 120);
    refused(&app, &idp.sign(idp.rsa, &c), 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_token_without_the_account_claim_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let mut c = claims("alice", "default");
    c.as_object_mut().unwrap().remove("brokergraph_account");
    refused(&app, &idp.sign(idp.rsa, &c), 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_token_for_an_account_that_does_not_exist_is_forbidden() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    refused(&app, &idp.token("alice", "desk-z"), 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn a_tampered_token_is_refused() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let token = idp.token("alice", "default");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    // Another signature...
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    refused(
        &app,
        &format!("{signed}.{flipped}{}", &signature[1..]),
        401,
        "UNAUTHENTICATED",
    )
    .await;
    // ...or other claims under the real one: bob's account in alice's token.
    let (header, _) = signed.split_once('.').unwrap();
    let bob = idp.token("alice", "desk-b");
    let bob_claims = bob.split('.').nth(1).unwrap();
    refused(
        &app,
        &format!("{header}.{bob_claims}.{signature}"),
        401,
        "UNAUTHENTICATED",
    )
    .await;
}

#[tokio::test]
async fn a_100_kb_token_is_refused_unparsed() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let mut c = claims("alice", "default");
    c["padding"] = json!("x".repeat(100 * 1024));
    let token = idp.sign(idp.rsa, &c);
    assert!(token.len() > 100 * 1024);
    refused(&app, &token, 401, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_jwks_endpoint_that_hangs_or_answers_junk_refuses_tokens_and_never_the_gateway() {
    for serving in [Serving::Hang, Serving::Junk] {
        let idp = Idp::serving(serving).await;
        // The gateway starts although the IdP does not answer (the fetch times out).
        let app = gateway(idp.jwks_url()).await;
        refused(&app, &idp.token("alice", "default"), 401, "UNAUTHENTICATED").await;
        let (status, _) = app.as_bearer("not-a-jwt", WHO).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_a_minute() {
    let idp = Idp::start().await;
    let app = gateway(idp.jwks_url()).await;
    let at_start = idp.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(at_start, 1, "fetched once at start");
    let mut header = Header::new(Algorithm::RS256);
    for kid in ["rotated-1", "rotated-2", "rotated-3"] {
        header.kid = Some(kid.to_string());
        let token =
            jsonwebtoken::encode(&header, &claims("alice", "default"), &idp.rsa.key).unwrap();
        refused(&app, &token, 401, "UNAUTHENTICATED").await;
    }
    // One refetch for the first unknown kid (the IdP may have rotated its keys),
    // none for the next ones within the minute: made-up kids cannot flood the IdP.
    assert_eq!(
        idp.fetches.load(std::sync::atomic::Ordering::SeqCst),
        at_start + 1
    );
    // Known keys are still served from what is held.
    let (status, _) = app.as_bearer(&idp.token("alice", "default"), WHO).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn websocket_and_sse_refuse_bad_tokens_and_end_when_the_token_expires() {
    let idp = Idp::start().await;
    let mut app = gateway(idp.jwks_url()).await;
    // A bad token in connection_init: 4403.
    let mut socket = WsClient::upgrade(app.addr).await;
    let expired = {
        let mut c = claims("alice", "default");
        c["exp"] = json!(now() - 60);
        idp.sign(idp.rsa, &c)
    };
    socket
        .send(json!({ "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {expired}") } }))
        .await;
    assert_eq!(socket.close_code().await, Some(4403));

    // A token that expires in two seconds: acknowledged, then closed with 4403.
    let mut c = claims("alice", "default");
    c["exp"] = json!(now() + 2);
    app.key = Some(idp.sign(idp.rsa, &c));
    let mut socket = app.ws().await;
    socket
        .subscribe("subscription { orderUpdates { event } }", json!({}))
        .await;
    assert_eq!(socket.close_code().await, Some(4403));

    // An SSE subscription with such a token ends at its expiry.
    c["exp"] = json!(now() + 2);
    let token = idp.sign(idp.rsa, &c);
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .bearer_auth(&token)
        .json(&json!({ "query": "subscription { orderUpdates { event } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut response = response;
    let ended = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends when the token expires");
    assert!(now() >= c["exp"].as_u64().unwrap());
}

#[tokio::test]
async fn the_audit_log_names_the_account_and_the_user() {
    let path = std::env::temp_dir().join(format!(
        "brokergraph-audit-jwt-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let idp = Idp::start().await;
    let url = idp.jwks_url();
    let audit = path.clone();
    let app = spawn_app_with(AppOptions {
        tweak: add_desk_b,
        configure: Some(Box::new(move |c| {
            c.auth.jwt = Some(idp::settings(url));
            c.audit.file = Some(audit);
        })),
        ..two_account_options()
    })
    .await;
    let cancel =
        r#"mutation { cancelOrder(input: { orderId: "T3JkZXI6eA" }) { userErrors { code } } }"#;
    app.as_bearer(&idp.token("bob", "desk-b"), cancel).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["mutation"], "cancelOrder", "{line}");
    assert_eq!(line["account"], "desk-b", "{line}");
    assert_eq!(line["subject"], "bob", "{line}");
    assert_eq!(line["key_id"], "jwt:bob", "{line}");
}

#[tokio::test]
async fn a_browser_app_on_a_listed_origin_may_send_its_token_cross_origin() {
    let idp = Idp::start().await;
    let url = idp.jwks_url();
    let app = spawn_app_with(AppOptions {
        configure: Some(Box::new(move |c| {
            c.auth.jwt = Some(idp::settings(url));
            c.server.cors_origins = vec!["https://app.example".into()];
        })),
        ..AppOptions::default()
    })
    .await;
    let allowed = preflight(&app, "https://app.example").await;
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let other = preflight(&app, "https://evil.example").await;
    // No allowed origin: the browser lets that page read nothing, credentials or not.
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // The request itself, as the browser sends it after the preflight.
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("origin", "https://app.example")
        .bearer_auth(idp.token("alice", "default"))
        .json(&json!({ "query": WHO }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
}

#[tokio::test]
async fn hs256_is_accepted_only_with_the_configured_secret() {
    const SECRET: &str = "a-shared-secret-of-at-least-32-bytes!";
    let app = spawn_app_with(AppOptions {
        configure: Some(Box::new(|c| {
            c.auth.jwt = Some(brokergraph::config::JwtSettings {
                hs256_secret: Some(brokergraph::secret::Secret::new(SECRET)),
                issuer: idp::ISSUER.into(),
                audience: idp::AUDIENCE.into(),
                ..Default::default()
            });
        })),
        ..AppOptions::default()
    })
    .await;
    let sign = |secret: &str| {
        let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("erin", "default"),
            &key,
        )
        .unwrap()
    };
    let (status, body) = app.as_bearer(&sign(SECRET), WHO).await;
    assert_eq!(status, 200, "{body}");
    refused(
        &app,
        &sign("another-secret-of-at-least-32-bytes!!"),
        401,
        "UNAUTHENTICATED",
    )
    .await;
}
