//! Starting what a scenario measures: broker-sim and the gateway in this process on
//! port 0, a paper account that looks like a trader's dashboard, and the `floor`
//! server that answers with fixed bytes.

use std::net::SocketAddr;

use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use axum::Router;
use brokergraph::cache::CacheStatsHandle;
use brokergraph::config::Config;
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const SIM_KEY: &str = "bench-broker-key";

/// Account + 20 positions (with their instruments) + 20 orders, ~6 KB: the read a
/// trading frontend polls, the shape the benchmarks measure.
pub const DASHBOARD: &str = "query Dashboard { \
  account { id accountNumber status currency cash buyingPower equity asOf } \
  positions(first: 20) { nodes { symbol quantity averagePrice marketValue asOf \
    instrument { tickSize lotSize } } } \
  orders(first: 20) { nodes { brokerOrderId symbol side type quantity filledQuantity \
    status createdAt } } }";

pub fn dashboard_body() -> Bytes {
    graphql_body(DASHBOARD, json!({}))
}

pub fn graphql_body(query: &str, variables: Value) -> Bytes {
    serde_json::to_vec(&json!({ "query": query, "variables": variables }))
        .expect("JSON")
        .into()
}

/// broker-sim and a gateway in front of it.
pub struct Stack {
    pub sim: broker_sim::SimHandle,
    pub gateway: SocketAddr,
    pub cache: CacheStatsHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Stack {
    /// `sim` and `tweak` adjust the defaults (no rate limit to speak of, frozen
    /// market, 20 positions).
    pub async fn start(
        sim: impl FnOnce(&mut broker_sim::SimConfig),
        tweak: impl FnOnce(&mut Config),
    ) -> Stack {
        let mut sim_config = broker_sim::SimConfig {
            api_keys: vec![SIM_KEY.into()],
            admin_token: Some("bench-admin".into()),
            instruments: 200,
            positions: 20,
            rate_limit: 1_000_000_000,
            tick_ms: 0,
            ..broker_sim::SimConfig::default()
        };
        sim(&mut sim_config);
        let sim = broker_sim::spawn(sim_config)
            .await
            .expect("broker-sim starts");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("literal"),
            ..Config::default()
        };
        config.broker.url = Some(sim.base_url());
        config.broker.api_key = Some(Secret::new(SIM_KEY));
        tweak(&mut config);
        let gateway = Gateway::bind(config).await.expect("gateway binds");
        let addr = gateway.local_addr();
        let cache = gateway.cache_stats_handle();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(gateway.run(async {
            let _ = rx.await;
        }));
        Stack {
            sim,
            gateway: addr,
            cache,
            stop: Some(tx),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.sim.shutdown().await;
    }

    /// Every request the broker answered (any route, any status).
    pub async fn broker_requests(&self) -> u64 {
        let stats = self.sim.stats().await;
        stats.requests.values().flat_map(|s| s.values()).sum()
    }

    /// One request through the gateway, as the load generator would send it.
    pub async fn graphql(&self, body: Bytes) -> Bytes {
        self.post(body, None).await
    }

    /// As [`Stack::graphql`], as the caller holding gateway key `key`.
    pub async fn graphql_as(&self, body: Bytes, key: &str) -> Bytes {
        self.post(body, Some(key)).await
    }

    async fn post(&self, body: Bytes, key: Option<&str>) -> Bytes {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.gateway))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request
            .send()
            .await
            .expect("gateway answers")
            .bytes()
            .await
            .expect("body")
    }

    pub fn broker(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.sim.base_url()))
            .bearer_auth(SIM_KEY)
    }

    /// `n` tradable lot-1 symbols, priced at 1.00 so thousands of buys fit the cash.
    pub async fn cheap_symbols(&self, n: usize) -> Vec<String> {
        crate::common::cheap_symbols(&self.sim, SIM_KEY, n).await
    }

    /// Buys one share of `symbol` at the broker directly; returns its order id.
    pub async fn broker_buy(&self, symbol: &str) -> String {
        let order: Value = self
            .broker(reqwest::Method::POST, "/v1/orders")
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"symbol": symbol, "side": "buy", "type": "market",
                "quantity": "1", "time_in_force": "day"}))
            .send()
            .await
            .expect("sim answers")
            .json()
            .await
            .expect("JSON");
        order["id"].as_str().expect("order id").to_string()
    }

    /// Gives the account 20 recent orders, so the dashboard has full pages.
    pub async fn seed_dashboard(&self) {
        let symbols = self.cheap_symbols(20).await;
        for s in &symbols {
            self.broker_buy(s).await;
        }
    }
}

/// Serves `body` at `POST /graphql` with the gateway's content type: the most a
/// GraphQL answer can cost on this machine, over the same HTTP stack.
pub async fn floor_server(body: Bytes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route(
        "/graphql",
        post(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/graphql-response+json")], body) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub use crate::common::rss_mib;
