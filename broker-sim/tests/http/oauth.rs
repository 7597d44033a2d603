//! `POST /oauth/token`: client credentials and rotating refresh tokens, access tokens
//! on `/v1` and its stream, expiry, reuse detection, RFC 6749 error bodies.

use std::time::Duration;

use broker_sim::SimConfig;
use serde_json::Value;

use crate::helpers::{config, Api, Resp, KEY};

const CLIENT: (&str, &str) = ("app-1", "app-1-secret");

fn oauth_config(ttl_secs: u64) -> SimConfig {
    SimConfig {
        oauth_clients: vec![
            (CLIENT.0.into(), CLIENT.1.into()),
            ("app-2".into(), "app-2-secret".into()),
        ],
        token_ttl_secs: ttl_secs,
        ..config()
    }
}

async fn token(api: &Api, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Resp {
    let mut req = api
        .http
        .post(format!("{}/oauth/token", api.base))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    api.send(req).await
}

async fn client_credentials(api: &Api) -> Value {
    let resp = token(api, &[("grant_type", "client_credentials")], Some(CLIENT)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    resp.body
}

async fn refresh(api: &Api, refresh_token: &str) -> Resp {
    token(
        api,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        Some(CLIENT),
    )
    .await
}

#[tokio::test]
async fn an_access_token_is_its_clients_account_on_v1_and_the_stream() {
    let sim = broker_sim::spawn(oauth_config(900)).await.unwrap();
    let api = Api::new(&sim);
    let issued = client_credentials(&api).await;
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["expires_in"], 900);
    assert!(issued["refresh_token"].is_string());
    let access = issued["access_token"].as_str().unwrap();
    let as_client = Api::with_key(&sim, access).get("/v1/account").await;
    assert_eq!(as_client.status, 200, "{}", as_client.body);
    // Its own paper account, after the two API-key accounts.
    let first = api.get("/v1/account").await.body;
    assert_ne!(as_client.body["id"], first["id"]);
    assert!(crate::stream::try_connect(&sim, Some(access)).await.is_ok());
    // The body may carry the client instead of Basic (RFC 6749 §2.3.1).
    let posted = token(
        &api,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-2"),
            ("client_secret", "app-2-secret"),
        ],
        None,
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    let other = Api::with_key(&sim, posted.body["access_token"].as_str().unwrap());
    assert_ne!(
        other.get("/v1/account").await.body["id"],
        as_client.body["id"]
    );
    assert_eq!(sim.stats().await.oauth.issued, 2);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let sim = broker_sim::spawn(oauth_config(900)).await.unwrap();
    let api = Api::new(&sim);
    let first = client_credentials(&api).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let second = refresh(&api, rt1).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let rt2 = second.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt2, rt1);
    let access2 = second.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        Api::with_key(&sim, &access2)
            .get("/v1/account")
            .await
            .status,
        200
    );

    // rt1 was spent: presenting it again is theft or a bug, and ends the family.
    let reused = refresh(&api, rt1).await;
    assert_eq!(
        (reused.status, reused.body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let after = refresh(&api, &rt2).await;
    assert_eq!(after.body["error"], "invalid_grant", "{}", after.body);
    assert_eq!(
        Api::with_key(&sim, &access2)
            .get("/v1/account")
            .await
            .status,
        401
    );
    let oauth = sim.stats().await.oauth;
    assert_eq!(
        (oauth.issued, oauth.refreshed, oauth.reuse_revoked),
        (2, 1, 1)
    );
    // Another family of the same client is untouched.
    let fresh = client_credentials(&api).await;
    let resp = refresh(&api, fresh["refresh_token"].as_str().unwrap()).await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn an_expired_access_token_is_a_401_invalid_token() {
    let sim = broker_sim::spawn(oauth_config(1)).await.unwrap();
    let api = Api::new(&sim);
    let issued = client_credentials(&api).await;
    let client = Api::with_key(&sim, issued["access_token"].as_str().unwrap());
    assert_eq!(client.get("/v1/account").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = client.get("/v1/account").await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code(), "invalid_token");
    assert_eq!(
        expired.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    // A key that was never issued is the plain 401, and not counted as expired.
    assert_eq!(
        Api::with_key(&sim, "at_bogus")
            .get("/v1/account")
            .await
            .code(),
        "unauthorized"
    );
    assert_eq!(sim.stats().await.oauth.expired_rejected, 1);
    // The refresh token outlives the access token.
    let renewed = refresh(&api, issued["refresh_token"].as_str().unwrap()).await;
    let client = Api::with_key(&sim, renewed.body["access_token"].as_str().unwrap());
    assert_eq!(client.get("/v1/account").await.status, 200);
}

#[tokio::test]
async fn bad_token_requests_get_rfc_6749_errors() {
    let sim = broker_sim::spawn(oauth_config(900)).await.unwrap();
    let api = Api::new(&sim);
    let wrong = token(
        &api,
        &[("grant_type", "client_credentials")],
        Some(("app-1", "nope")),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let none = token(&api, &[("grant_type", "client_credentials")], None).await;
    assert_eq!(none.body["error"], "invalid_client");
    let grant = token(&api, &[("grant_type", "password")], Some(CLIENT)).await;
    assert_eq!(
        (grant.status, grant.body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let unknown = refresh(&api, "rt_never_issued").await;
    assert_eq!(unknown.body["error"], "invalid_grant");
    // An API key is not a refresh token, nor a client.
    let key = refresh(&api, KEY).await;
    assert_eq!(key.body["error"], "invalid_grant");
    let json = api
        .send(
            api.http
                .post(format!("{}/oauth/token", api.base))
                .json(&serde_json::json!({ "grant_type": "client_credentials" })),
        )
        .await;
    assert_eq!(
        (json.status, json.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(json.body["error_description"].is_string());
}
