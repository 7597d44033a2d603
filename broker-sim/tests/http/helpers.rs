//! Shared helpers for the integration tests: a small HTTP client over a spawned sim.

use broker_sim::{SimConfig, SimHandle};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

pub const KEY: &str = "test-key";
pub const ADMIN: &str = "admin-token";

/// A frozen market (no clock) with an admin token: every test drives time itself.
pub fn config() -> SimConfig {
    SimConfig {
        api_keys: vec![KEY.into(), "other-key".into()],
        admin_token: Some(ADMIN.into()),
        tick_ms: 0,
        instruments: 300,
        rate_limit: 10_000,
        ..Default::default()
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub fn new(sim: &SimHandle) -> Api {
        Api::with_key(sim, KEY)
    }

    pub fn with_key(sim: &SimHandle, key: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: sim.base_url(),
            key: key.into(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.key),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(
            self.http
                .delete(format!("{}{path}", self.base))
                .bearer_auth(&self.key),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, body: &str, key: Option<&str>) -> Resp {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    /// `PATCH` (a replace) with a JSON body and an optional `Idempotency-Key`.
    pub async fn patch(&self, path: &str, body: &Value, key: Option<&str>) -> Resp {
        let mut req = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    pub async fn order(&self, body: Value, key: Option<&str>) -> Resp {
        self.post_raw("/v1/orders", &body.to_string(), key).await
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// All instruments, walking the cursor chain.
    pub async fn instruments(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = "/v1/instruments?limit=100".to_string();
        loop {
            let r = self.get(&path).await;
            assert_eq!(r.status, 200, "{}", r.body);
            out.extend(r.body["data"].as_array().unwrap().iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/instruments?limit=100&cursor={c}"),
                None => return out,
            }
        }
    }

    /// `(bid, ask)` of `symbol` now: where a sell and a buy trade.
    pub async fn quote(&self, symbol: &str) -> (rust_decimal::Decimal, rust_decimal::Decimal) {
        let r = self.get(&format!("/v1/quotes?symbols={symbol}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let q = &r.body["data"][0];
        (dec(&q["bid"]), dec(&q["ask"]))
    }

    /// A tradable instrument with the given lot size and a cent tick.
    pub async fn pick(&self, lot: &str) -> Value {
        self.instruments()
            .await
            .into_iter()
            .find(|i| {
                i["tradable"] == json!(true)
                    && i["lot_size"] == json!(lot)
                    && i["tick_size"] == "0.01"
            })
            .expect("an instrument with that lot size")
    }
}

pub fn dec(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
        .parse()
        .unwrap()
}

pub fn market(symbol: &str, side: &str, qty: &str) -> Value {
    json!({"symbol": symbol, "side": side, "type": "market", "quantity": qty})
}

pub fn limit(symbol: &str, side: &str, qty: &str, price: &str) -> Value {
    json!({"symbol": symbol, "side": side, "type": "limit", "quantity": qty, "limit_price": price, "time_in_force": "gtc"})
}
