//! OAuth 2.0 broker accounts (`[accounts.oauth]`) against broker-sim's
//! `/oauth/token`: refreshed ahead of expiry, one refresh at a time (two would spend
//! a rotating refresh token twice, and the sim would revoke the family), the rotated
//! refresh token kept encrypted in the token store across restarts, a refused
//! refresh as `BROKER_REAUTH_REQUIRED` for that account only, and a token endpoint
//! that fails in every way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use broker_sim::{SimConfig, SimHandle};
use brokergraph::config::{
    AccountConfig, BrokerKind, Config, GatewayKeyConfig, OAuthConfig, Scope,
};
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{sim_config, SIM_KEY};

const CLIENT_ID: &str = "gateway-app";
const CLIENT_SECRET: &str = "gateway-app-secret";
const KEY_DEFAULT: &str = "key-default";
const KEY_TOKENS: &str = "key-tokens";
const WHO: &str = "{ account { id cash } }";

fn sim(ttl_secs: u64) -> SimConfig {
    SimConfig {
        oauth_clients: vec![(CLIENT_ID.into(), CLIENT_SECRET.into())],
        token_ttl_secs: ttl_secs,
        ..sim_config()
    }
}

fn store_key() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn store_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tokens-{}-{n}.enc", std::process::id()))
}

/// The gateway's options for one OAuth account `tokens` beside `default`.
struct Setup {
    broker_url: String,
    token_url: String,
    refresh_token: Option<String>,
    store: PathBuf,
    key: String,
    tweak: fn(&mut Config),
}

impl Setup {
    fn on(sim: &SimHandle) -> Setup {
        Setup {
            broker_url: sim.base_url(),
            token_url: format!("{}/oauth/token", sim.base_url()),
            refresh_token: None,
            store: store_path(),
            key: store_key(),
            tweak: |_| {},
        }
    }

    fn config(&self) -> Config {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        config.broker.url = Some(self.broker_url.clone());
        config.broker.api_key = Some(Secret::new(SIM_KEY));
        config.accounts.push(AccountConfig {
            id: "tokens".into(),
            broker: BrokerKind::Generic,
            url: Some(self.broker_url.clone()),
            api_key: None,
            key_id: None,
            secret: None,
            oauth: Some(OAuthConfig {
                token_url: self.token_url.clone(),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                refresh_token: self.refresh_token.clone().map(Secret::new),
                scopes: vec![],
            }),
        });
        config.keys = [("default", KEY_DEFAULT), ("tokens", KEY_TOKENS)]
            .map(|(account, key)| GatewayKeyConfig {
                id: account.into(),
                sha256: hex::encode(Sha256::digest(key)),
                scopes: vec![Scope::Read, Scope::Trade],
                account: account.into(),
            })
            .to_vec();
        config.token_store.path = self.store.clone();
        config.token_store.key = Some(Secret::new(self.key.clone()));
        // Every read reaches the broker, so every request needs a token.
        config.cache.account_ttl = Duration::from_millis(1);
        config.rate_limit.per_minute = 0;
        (self.tweak)(&mut config);
        config
    }

    async fn start(&self) -> Gw {
        let gateway = Gateway::bind(self.config()).await.expect("gateway binds");
        let url = format!("http://{}/graphql", gateway.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(gateway.run(async {
            let _ = stopped.await;
        }));
        Gw {
            url,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }
}

struct Gw {
    url: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), brokergraph::server::ServeError>>>,
}

impl Gw {
    async fn query(&self, key: &str, query: &str) -> Value {
        self.http
            .post(&self.url)
            .bearer_auth(key)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("gateway answers")
            .json()
            .await
            .expect("JSON")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let url = self.url.replace("/graphql", path);
        self.http.get(url).send().await.expect("gateway answers")
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.task.take().unwrap().await;
    }
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// A refresh token straight from the sim, as an operator would paste one from an
/// authorization; the gateway starts from it (the `refresh_token` grant).
async fn first_refresh_token(sim: &SimHandle) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn fifty_clients_across_several_expiries_all_succeed_with_one_refresh_each() {
    let sim = broker_sim::spawn(sim(2)).await.unwrap();
    let setup = Setup::on(&sim);
    let gw = Arc::new(setup.start().await);
    let failures = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let (gw, failures, requests, done) =
                (gw.clone(), failures.clone(), requests.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    // A broker call of its own (the cache coalesces equal reads).
                    let id = URL_SAFE_NO_PAD.encode(format!("Order:{}", uuid::Uuid::new_v4()));
                    let query = format!("{{ account {{ id cash }} order(id: \"{id}\") {{ id }} }}");
                    let body = gw.query(KEY_TOKENS, &query).await;
                    requests.fetch_add(1, Ordering::Relaxed);
                    if body.get("errors").is_some() || !body["data"]["account"]["cash"].is_string()
                    {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {body}");
                    }
                }
            })
        })
        .collect();
    // Until the sim has refreshed four times: several token lifetimes, however
    // fast this machine runs.
    loop {
        let oauth = sim.stats().await.oauth;
        let broken = oauth.reuse_revoked > 0 || failures.load(Ordering::Relaxed) > 0;
        if oauth.refreshed >= 4 || broken {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "every request succeeds"
    );
    let oauth = sim.stats().await.oauth;
    // One grant to start, then only refreshes, each spending the previous refresh
    // token once: a second refresh of one token would have revoked the family.
    assert_eq!(oauth.reuse_revoked, 0, "{oauth:?}");
    assert_eq!(oauth.issued, oauth.refreshed + 1, "{oauth:?}");
    // Refreshed ahead of expiry: at most one request per expiry met an expired token.
    assert!(oauth.expired_rejected <= oauth.refreshed, "{oauth:?}");
    assert!(requests.load(Ordering::Relaxed) >= 50);
}

#[tokio::test]
async fn a_restart_continues_with_the_rotated_refresh_token_kept_encrypted() {
    let sim = broker_sim::spawn(sim(2)).await.unwrap();
    let rt0 = first_refresh_token(&sim).await;
    let mut setup = Setup::on(&sim);
    setup.refresh_token = Some(rt0.clone());
    let gw = setup.start().await;
    assert!(gw.query(KEY_TOKENS, WHO).await["data"]["account"]["id"].is_string());
    gw.stop().await;
    assert_eq!(sim.stats().await.oauth.refreshed, 1, "rt0 was spent");
    let stored = std::fs::read(&setup.store).expect("the store file exists");
    for clear in [rt0.as_bytes(), b"rt_", b"at_", CLIENT_SECRET.as_bytes()] {
        assert!(
            !stored.windows(clear.len()).any(|w| w == clear),
            "no token in clear"
        );
    }

    // Past half the access token's life, the restarted gateway must refresh: with
    // rt0 from its config the sim would see a reuse and revoke everything.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let gw = setup.start().await;
    let body = gw.query(KEY_TOKENS, WHO).await;
    assert!(body["data"]["account"]["id"].is_string(), "{body}");
    let oauth = sim.stats().await.oauth;
    assert_eq!((oauth.refreshed, oauth.reuse_revoked), (2, 0), "{oauth:?}");
    gw.stop().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_is_reauth_required_for_that_account_only() {
    let sim = broker_sim::spawn(sim(900)).await.unwrap();
    let rt0 = first_refresh_token(&sim).await;
    let mut setup = Setup::on(&sim);
    setup.refresh_token = Some(rt0.clone());
    let gw = setup.start().await;
    assert!(gw.query(KEY_TOKENS, WHO).await["data"].is_object());
    let metrics = gw.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("brokergraph_oauth_token_expiry_timestamp_seconds{account=\"tokens\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("brokergraph_breaker_state{account=\"default\",state=\"closed\"} 1"),
        "{metrics}"
    );
    let ready: Value = gw.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(ready["accounts"]["tokens"]["token_expires_in_secs"].as_u64() > Some(800));
    // Someone replays the spent rt0: the sim revokes the family, access token too.
    let replay = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt0.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);

    let body = gw.query(KEY_TOKENS, WHO).await;
    assert_eq!(code(&body), "BROKER_REAUTH_REQUIRED", "{body}");
    let refreshes = sim.stats().await.oauth.refreshed;
    let again = gw.query(KEY_TOKENS, WHO).await;
    assert_eq!(code(&again), "BROKER_REAUTH_REQUIRED", "{again}");
    assert_eq!(
        sim.stats().await.oauth.refreshed,
        refreshes,
        "not asked again"
    );
    let other = gw.query(KEY_DEFAULT, WHO).await;
    assert!(other["data"]["account"]["cash"].is_string(), "{other}");
    // Ready for the account that works, and saying which one does not.
    let resp = gw.get("/readyz").await;
    assert_eq!(resp.status(), 200);
    let ready: Value = resp.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(
        ready["accounts"]["tokens"]["code"], "BROKER_REAUTH_REQUIRED",
        "{ready}"
    );
    assert_eq!(ready["accounts"]["default"]["status"], "ready", "{ready}");
    gw.stop().await;
}

/// A token endpoint that misbehaves as `mode` says.
async fn fake_token_endpoint(mode: &'static str) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/oauth/token",
        post(move || async move {
            match mode {
                "hang" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    (axum::http::StatusCode::OK, String::new())
                }
                "500" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops".into()),
                _ => (axum::http::StatusCode::OK, "<html>not json".into()),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/oauth/token")
}

#[tokio::test]
async fn a_failing_token_endpoint_is_broker_unavailable_for_that_account_only() {
    let sim = broker_sim::spawn(sim(900)).await.unwrap();
    for mode in ["hang", "500", "garbage"] {
        let mut setup = Setup::on(&sim);
        setup.token_url = fake_token_endpoint(mode).await;
        setup.tweak = |c| c.broker.request_timeout = Duration::from_millis(300);
        let gw = setup.start().await;
        let body = gw.query(KEY_TOKENS, WHO).await;
        assert_eq!(code(&body), "BROKER_UNAVAILABLE", "{mode}: {body}");
        let other = gw.query(KEY_DEFAULT, WHO).await;
        assert!(
            other["data"]["account"]["cash"].is_string(),
            "{mode}: {other}"
        );
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_bad_store_file_stops_the_start_and_is_left_as_it_was() {
    let sim = broker_sim::spawn(sim(900)).await.unwrap();
    let setup = Setup::on(&sim);
    // A real store, written under one key...
    let gw = setup.start().await;
    assert!(gw.query(KEY_TOKENS, WHO).await["data"].is_object());
    gw.stop().await;
    let written = std::fs::read(&setup.store).unwrap();
    // ...is refused under another.
    let mut other_key = Setup::on(&sim);
    other_key.store = setup.store.clone();
    let err = Gateway::bind(other_key.config())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("another BROKERGRAPH_STORE_KEY"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&setup.store.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&setup.store).unwrap(),
        written,
        "left as it was"
    );

    let corrupt = Setup::on(&sim);
    std::fs::write(&corrupt.store, b"not a token store").unwrap();
    let err = Gateway::bind(corrupt.config())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert_eq!(std::fs::read(&corrupt.store).unwrap(), b"not a token store");

    let unreadable = Setup::on(&sim);
    std::fs::create_dir(&unreadable.store).unwrap();
    let err = Gateway::bind(unreadable.config())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[tokio::test]
async fn two_gateways_on_one_store_refresh_one_account_once() {
    let sim = broker_sim::spawn(sim(2)).await.unwrap();
    let rt0 = first_refresh_token(&sim).await;
    let mut setup = Setup::on(&sim);
    setup.refresh_token = Some(rt0);
    let (a, b) = (setup.start().await, setup.start().await);
    // Both start without a token and ask at once, then again past half-life.
    for _ in 0..2 {
        let (x, y) = tokio::join!(a.query(KEY_TOKENS, WHO), b.query(KEY_TOKENS, WHO));
        assert!(x["data"]["account"]["id"].is_string(), "{x}");
        assert!(y["data"]["account"]["id"].is_string(), "{y}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let oauth = sim.stats().await.oauth;
    assert_eq!(oauth.reuse_revoked, 0, "{oauth:?}");
    assert_eq!(
        oauth.refreshed, 2,
        "one refresh per half-life for both: {oauth:?}"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_401_costs_one_refresh_and_one_resend_and_a_submit_stays_one_order() {
    let sim = broker_sim::spawn(sim(900)).await.unwrap();
    let setup = Setup::on(&sim);
    let gw = setup.start().await;
    let picked = gw
        .query(KEY_TOKENS, crate::common::INSTRUMENTS_FOR_PICKING)
        .await;
    let symbol = crate::common::cheap_symbol_in(&picked["data"], &sim).await;
    let before = sim.stats().await;
    // The broker ends the token's life early: the gateway's clock still trusts it.
    assert_eq!(sim.expire_tokens().await, 1);
    let key = uuid::Uuid::new_v4();
    let submit = format!(
        "mutation {{ submitOrder(input: {{ idempotencyKey: \"{key}\", symbol: \"{symbol}\", \
         side: BUY, type: MARKET, quantity: \"1\" }}) {{ order {{ id }} userErrors {{ code }} }} }}"
    );
    let body = gw.query(KEY_TOKENS, &submit).await;
    assert!(
        body["data"]["submitOrder"]["order"]["id"].is_string(),
        "{body}"
    );
    let after = sim.stats().await;
    assert_eq!(after.orders_created - before.orders_created, 1, "one order");
    assert_eq!(
        after.oauth.expired_rejected - before.oauth.expired_rejected,
        1
    );
    assert_eq!(after.oauth.issued - before.oauth.issued, 1, "one new token");
    assert_eq!(
        after.count_status("POST /v1/orders", 401)
            + after.count_status("POST /v1/orders", 201)
            + after.count_status("POST /v1/orders", 200),
        2,
        "one refused send, one resend: {:?}",
        after.requests.get("POST /v1/orders")
    );
    gw.stop().await;
}
