//! `spawn_app()`: broker-sim and the gateway on port 0, over real HTTP, with typed
//! handles for the test to drive and inspect both.
#![allow(dead_code)]

use std::net::SocketAddr;

use broker_sim::{SimConfig, SimHandle, Stats};
use brokergraph::config::{Config, GatewayKeyConfig, Scope};
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const SIM_KEY: &str = "test-broker-key";
pub const ADMIN: &str = "test-admin";

pub struct TestApp {
    pub addr: SocketAddr,
    pub sim: SimHandle,
    pub http: reqwest::Client,
    /// The gateway key sent as `Authorization: Bearer`, if keys are configured.
    pub key: Option<String>,
    /// The gateway's cache and throttle counters.
    pub cache: brokergraph::cache::CacheStatsHandle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub struct AppOptions {
    pub sim: SimConfig,
    /// `(id, key, scopes)`; empty means no keys (loopback-only mode).
    pub keys: Vec<(&'static str, &'static str, Vec<Scope>)>,
    /// The key this app's `query` sends.
    pub use_key: Option<&'static str>,
    pub tweak: fn(&mut Config),
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            sim: sim_config(),
            keys: Vec::new(),
            use_key: None,
            tweak: |_| {},
        }
    }
}

/// A sim with admin access and a rate limit high enough that tests walking whole
/// lists measure the gateway, not the sim's 200/min default.
pub fn sim_config() -> SimConfig {
    SimConfig {
        api_keys: vec![SIM_KEY.to_string()],
        admin_token: Some(ADMIN.to_string()),
        rate_limit: 100_000,
        ..SimConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    let sim = broker_sim::spawn(opts.sim)
        .await
        .expect("broker-sim starts");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.broker.url = Some(sim.base_url());
    config.broker.api_key = Some(Secret::new(SIM_KEY));
    config.keys = opts
        .keys
        .iter()
        .map(|(id, key, scopes)| GatewayKeyConfig {
            id: id.to_string(),
            sha256: hex::encode(Sha256::digest(key.as_bytes())),
            scopes: scopes.clone(),
        })
        .collect();
    (opts.tweak)(&mut config);
    let gateway = Gateway::bind(config).await.expect("gateway binds");
    let addr = gateway.local_addr();
    let cache = gateway.cache_stats_handle();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(gateway.run(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        sim,
        http: reqwest::Client::new(),
        key: opts.use_key.map(str::to_string),
        cache,
        shutdown: Some(tx),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL request and returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_raw(query, variables).await.1
    }

    pub async fn graphql_raw(&self, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    /// `data`, after asserting there were no errors.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The first error's `extensions.code`.
    pub async fn error_code(&self, query: &str, variables: Value) -> String {
        let body = self.graphql(query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error code: {body:#}"))
            .to_string()
    }

    /// Reads the broker's REST API directly, as the gateway's source of truth.
    pub async fn broker_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim.base_url()))
            .bearer_auth(SIM_KEY)
            .send()
            .await
            .expect("sim answers")
            .json()
            .await
            .expect("JSON")
    }

    pub async fn stats(&self) -> Stats {
        self.sim.stats().await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
