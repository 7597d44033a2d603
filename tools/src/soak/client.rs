//! The soak's clients: what a careful frontend does. Submit with a fresh key, retry
//! with the same key on every retryable code until an answer comes, cancel some
//! resting orders, and poll the dashboard meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

/// The codes that say "try again" (docs/api.md, "Submitting safely").
const RETRYABLE: &[&str] = &[
    "OUTCOME_UNKNOWN",
    "IDEMPOTENCY_KEY_IN_USE",
    "BROKER_UNAVAILABLE",
    "RATE_LIMITED",
];
/// Every code docs/api.md documents, less INTERNAL_ERROR (a bug, so a violation).
const DOCUMENTED: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_USER_INPUT",
    "QUERY_TOO_COMPLEX",
    "RATE_LIMITED",
    "BROKER_UNAVAILABLE",
    "OUTCOME_UNKNOWN",
    "IDEMPOTENCY_KEY_IN_USE",
    "BROKER_ERROR",
];
const MAX_TRIES: usize = 200;

/// What one submit ended with: the broker order id the client was told, if any.
pub struct Outcome {
    pub key: Uuid,
    pub order_id: Option<String>,
}

#[derive(Default)]
pub struct Tally {
    pub retryable: AtomicU64,
    pub undocumented: AtomicU64,
    pub http_500: AtomicU64,
    pub cancels: AtomicU64,
    pub polls: AtomicU64,
    /// Retryable answers by code, to see what the clients spent their retries on.
    codes: Mutex<std::collections::BTreeMap<String, u64>>,
    samples: Mutex<Vec<String>>,
    stopped: AtomicBool,
}

pub struct TallySnapshot {
    pub retryable: u64,
    pub undocumented: u64,
    pub http_500: u64,
    pub cancels: u64,
    pub polls: u64,
    pub codes: String,
    pub samples: Vec<String>,
}

impl Tally {
    pub fn stop(&self) {
        self.stopped.store(true, Relaxed);
    }

    pub fn snapshot(&self) -> TallySnapshot {
        TallySnapshot {
            retryable: self.retryable.load(Relaxed),
            undocumented: self.undocumented.load(Relaxed),
            http_500: self.http_500.load(Relaxed),
            cancels: self.cancels.load(Relaxed),
            polls: self.polls.load(Relaxed),
            codes: self
                .codes
                .lock()
                .unwrap()
                .iter()
                .map(|(c, n)| format!("{c}:{n}"))
                .collect::<Vec<_>>()
                .join(","),
            samples: self.samples.lock().unwrap().clone(),
        }
    }

    fn violation(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Relaxed);
        let mut samples = self.samples.lock().unwrap();
        if samples.len() < 20 {
            samples.push(what);
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    url: String,
    symbols: Vec<String>,
    tally: Arc<Tally>,
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        url: String,
        symbols: Vec<String>,
        tally: Arc<Tally>,
    ) -> Self {
        Client {
            http,
            url,
            symbols,
            tally,
        }
    }

    /// Sends one GraphQL request; `Err(code)` for an error answer.
    async fn send(&self, query: &str, variables: Value) -> Result<Value, String> {
        let resp = match self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(format!("transport: {e}")),
        };
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status >= 500 {
            self.tally
                .violation(&self.tally.http_500, format!("HTTP {status}: {body}"));
            return Err("HTTP_5XX".into());
        }
        match body["errors"][0]["extensions"]["code"].as_str() {
            None if body["data"].is_object() => Ok(body["data"].clone()),
            Some(code) if DOCUMENTED.contains(&code) => {
                if RETRYABLE.contains(&code) {
                    self.tally.retryable.fetch_add(1, Relaxed);
                    *self
                        .tally
                        .codes
                        .lock()
                        .unwrap()
                        .entry(code.to_string())
                        .or_default() += 1;
                }
                Err(code.to_string())
            }
            _ => {
                self.tally.violation(
                    &self.tally.undocumented,
                    format!("undocumented answer: {body}"),
                );
                Err("UNDOCUMENTED".into())
            }
        }
    }

    pub async fn run(&self, client: usize, orders: usize) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(orders);
        for i in 0..orders {
            let symbol = &self.symbols[(client + i) % self.symbols.len()];
            // Every fifth order rests (a limit far below the market) and is cancelled.
            let resting = i % 5 == 4;
            let key = Uuid::new_v4();
            let order_id = self.submit(key, symbol, resting).await;
            if let (true, Some(id)) = (resting, &order_id) {
                self.cancel(id).await;
            }
            outcomes.push(Outcome { key, order_id });
        }
        outcomes
    }

    async fn submit(&self, key: Uuid, symbol: &str, resting: bool) -> Option<String> {
        let input = if resting {
            json!({ "idempotencyKey": key, "symbol": symbol, "side": "BUY", "type": "LIMIT", "quantity": "1", "limitPrice": "0.50", "timeInForce": "GTC" })
        } else {
            json!({ "idempotencyKey": key, "symbol": symbol, "side": "BUY", "type": "MARKET", "quantity": "1" })
        };
        let query = "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { order { id brokerOrderId } userErrors { code message } } }";
        for _ in 0..MAX_TRIES {
            match self.send(query, json!({ "input": input })).await {
                Ok(data) => {
                    let payload = &data["submitOrder"];
                    if let Some(id) = payload["order"]["brokerOrderId"].as_str() {
                        return Some(id.to_string());
                    }
                    self.tally.violation(
                        &self.tally.undocumented,
                        format!("submit refused: {payload}"),
                    );
                    return None;
                }
                Err(code)
                    if RETRYABLE.contains(&code.as_str()) || code.starts_with("transport") =>
                {
                    tokio::time::sleep(Duration::from_millis(20 + rand::random::<u64>() % 80))
                        .await;
                }
                Err(_) => return None,
            }
        }
        None
    }

    async fn cancel(&self, broker_id: &str) {
        use base64::Engine;
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("Order:{broker_id}"));
        let query = "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } userErrors { code } } }";
        for _ in 0..MAX_TRIES {
            match self.send(query, json!({ "id": id })).await {
                Ok(_) => {
                    self.tally.cancels.fetch_add(1, Relaxed);
                    return;
                }
                Err(code)
                    if RETRYABLE.contains(&code.as_str()) || code.starts_with("transport") =>
                {
                    tokio::time::sleep(Duration::from_millis(20 + rand::random::<u64>() % 80))
                        .await;
                }
                Err(_) => return,
            }
        }
    }
}

/// Polls the dashboard every 100 ms until the clients finish; its errors must be
/// documented codes too.
pub async fn poll_dashboard(http: reqwest::Client, url: String, tally: Arc<Tally>) {
    let client = Client::new(http, url, Vec::new(), tally.clone());
    let query = "{ account { cash equity asOf } positions(first: 20) { nodes { symbol quantity instrument { name } } } orders(first: 20) { nodes { id status } } }";
    while !tally.stopped.load(Relaxed) {
        let _ = client.send(query, json!({})).await;
        tally.polls.fetch_add(1, Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
