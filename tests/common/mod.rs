//! `spawn_app()`: broker-sim and the gateway on port 0, over real HTTP, with typed
//! handles for the test to drive and inspect both.
//!
//! Included by several test binaries (`#[path = "../common/mod.rs"] mod common;`).
//! The api binary uses every item, so a helper nobody needs any more warns there;
//! the binaries that use only a few say so where they include it.

use std::net::SocketAddr;

use broker_sim::{Dialect, SimConfig, SimHandle, Stats};
use brokergraph::config::{Config, GatewayKeyConfig, Scope};
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub mod idp;
pub mod ws;

pub const SIM_KEY: &str = "test-broker-key";
pub const ADMIN: &str = "test-admin";

pub struct TestApp {
    pub addr: SocketAddr,
    pub sim: SimHandle,
    pub http: reqwest::Client,
    /// The gateway key sent as `Authorization: Bearer`, if keys are configured.
    pub key: Option<String>,
    /// The REST dialect the sim serves and the gateway's adapter speaks.
    pub dialect: Dialect,
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
    /// Applied after `tweak`, for settings known only at run time (a port).
    pub configure: Option<Configure>,
}

pub type Configure = Box<dyn FnOnce(&mut Config) + Send>;

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            sim: sim_config(),
            keys: Vec::new(),
            use_key: None,
            tweak: |_| {},
            configure: None,
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

/// `spawn_app()` with the sim serving `dialect` and the gateway on the matching adapter.
pub async fn spawn_app_in(dialect: Dialect) -> TestApp {
    spawn_app_with(AppOptions {
        sim: SimConfig {
            dialect,
            ..sim_config()
        },
        ..AppOptions::default()
    })
    .await
}

/// Runs each listed `async fn name(dialect: Dialect)` as two tests, `generic::name` and
/// `alpaca::name`: the same test against both of broker-sim's dialects.
#[macro_export]
macro_rules! in_both_dialects {
    ($($name:ident),+ $(,)?) => {
        mod generic {
            $(#[tokio::test]
            async fn $name() {
                super::$name(broker_sim::Dialect::Generic).await
            })+
        }
        mod alpaca {
            $(#[tokio::test]
            async fn $name() {
                super::$name(broker_sim::Dialect::Alpaca).await
            })+
        }
    };
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    let dialect = opts.sim.dialect;
    let sim = broker_sim::spawn(opts.sim)
        .await
        .expect("broker-sim starts");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.broker.url = Some(sim.base_url());
    config.broker.api_key = Some(Secret::new(SIM_KEY));
    if dialect == Dialect::Alpaca {
        // The sim takes an account's key as both key id and secret.
        config.broker.kind = brokergraph::config::BrokerKind::Alpaca;
        config.broker.api_key = None;
        config.broker.key_id = Some(Secret::new(SIM_KEY));
        config.broker.secret = Some(Secret::new(SIM_KEY));
    }
    config.keys = opts
        .keys
        .iter()
        .map(|(id, key, scopes)| GatewayKeyConfig {
            id: id.to_string(),
            sha256: hex::encode(Sha256::digest(key.as_bytes())),
            scopes: scopes.clone(),
            account: brokergraph::config::DEFAULT_ACCOUNT.to_string(),
        })
        .collect();
    (opts.tweak)(&mut config);
    if let Some(configure) = opts.configure {
        configure(&mut config);
    }
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
        dialect,
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

    /// `query` with `token` (a gateway key or a JWT) as the bearer: status and body.
    pub async fn as_bearer(&self, token: &str, query: &str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("gateway answers");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON body"),
        )
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
        self.broker_auth(self.http.get(format!("{}{path}", self.sim.base_url())))
            .send()
            .await
            .expect("sim answers")
            .json()
            .await
            .expect("JSON")
    }

    /// The sim's credentials in its dialect's headers.
    pub fn broker_auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.dialect {
            Dialect::Generic => request.bearer_auth(SIM_KEY),
            Dialect::Alpaca => request
                .header("APCA-API-KEY-ID", SIM_KEY)
                .header("APCA-API-SECRET-KEY", SIM_KEY),
        }
    }

    /// A generic route key (`POST /v1/orders`) as this sim's dialect names it in
    /// stats and fault rules.
    pub fn route(&self, generic: &str) -> String {
        match self.dialect {
            Dialect::Generic => generic.to_string(),
            Dialect::Alpaca => generic
                .replace("/v1/instruments", "/v2/assets")
                .replace("/v1/", "/v2/"),
        }
    }

    /// `(symbol, lot size)` of the tradable instruments among the first 100 by
    /// symbol, read from the broker directly in its dialect.
    pub async fn tradable_instruments(&self) -> Vec<(String, String)> {
        let (list, lot) = match self.dialect {
            Dialect::Generic => (
                self.broker_get("/v1/instruments?limit=100").await["data"].clone(),
                "lot_size",
            ),
            Dialect::Alpaca => (self.broker_get("/v2/assets").await, "min_trade_increment"),
        };
        let mut all: Vec<&Value> = list.as_array().expect("a list").iter().take(100).collect();
        all.sort_by_key(|i| i["symbol"].as_str().map(str::to_string));
        all.iter()
            .filter(|i| i["tradable"] == json!(true))
            .map(|i| {
                (
                    i["symbol"].as_str().unwrap().to_string(),
                    i[lot].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Places a market buy at the broker directly (not through the gateway);
    /// returns the broker's order JSON (with its `id`).
    pub async fn broker_buy(&self, symbol: &str, qty: &str) -> Value {
        let key = uuid::Uuid::new_v4().to_string();
        let request = match self.dialect {
            Dialect::Generic => self
                .http
                .post(format!("{}/v1/orders", self.sim.base_url()))
                .header("Idempotency-Key", &key)
                .json(&json!({"symbol": symbol, "side": "buy", "type": "market",
                    "quantity": qty, "time_in_force": "day"})),
            Dialect::Alpaca => self
                .http
                .post(format!("{}/v2/orders", self.sim.base_url()))
                .json(&json!({"symbol": symbol, "side": "buy", "type": "market",
                    "qty": qty, "time_in_force": "day", "client_order_id": key})),
        };
        self.broker_auth(request)
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

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Every request the broker has received, any route, any answer.
    pub async fn broker_requests(&self) -> u64 {
        self.stats()
            .await
            .requests
            .values()
            .flat_map(|m| m.values())
            .sum()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Lists instruments so that a test can pick one (with [`cheap_symbol_in`]).
pub const INSTRUMENTS_FOR_PICKING: &str =
    "{ instruments(first: 100) { nodes { symbol tradable lotSize } } }";

/// A tradable lot-1 instrument of an answer to [`INSTRUMENTS_FOR_PICKING`], priced at
/// 10.00 in `sim` so that buys are cheap.
pub async fn cheap_symbol_in(data: &Value, sim: &SimHandle) -> String {
    let symbol = data["instruments"]["nodes"]
        .as_array()
        .expect("an instruments page")
        .iter()
        .find(|i| i["tradable"] == json!(true) && i["lotSize"] == json!("1"))
        .expect("a tradable instrument with lot size 1")["symbol"]
        .as_str()
        .expect("a symbol")
        .to_string();
    sim.set_price(&symbol, "10.00").await;
    symbol
}
