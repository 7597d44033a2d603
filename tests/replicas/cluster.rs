//! `Cluster::start`: one real redis-server, one broker-sim, and N gateway
//! *processes* (the real `brokergraph` binary), so a replica can be killed mid-submit
//! like a crashed pod.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use broker_sim::{Dialect, SimConfig, SimHandle};
use serde_json::{json, Value};

use crate::common::{sim_config, SIM_KEY};
use crate::redis_server::RedisServer;

pub struct Replica {
    pub addr: SocketAddr,
    child: Child,
    /// Every line it logged after its address, for tests that grep them.
    logs: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Whether the process still runs (not killed by a test, not crashed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Cluster {
    pub redis: RedisServer,
    pub sim: SimHandle,
    pub replicas: Vec<Replica>,
    pub http: reqwest::Client,
}

/// Settings every replica gets, as `BROKERGRAPH_*` variables (name without prefix).
pub type Env = &'static [(&'static str, &'static str)];

impl Cluster {
    pub async fn start(replicas: usize, sim: SimConfig, env: Env) -> Cluster {
        let redis = RedisServer::start();
        let url = redis.url();
        Cluster::start_on(redis, &url, replicas, sim, env).await
    }

    /// On a given Redis, reached with `redis_url` (which may carry a password).
    pub async fn start_on(
        redis: RedisServer,
        redis_url: &str,
        replicas: usize,
        sim: SimConfig,
        env: Env,
    ) -> Cluster {
        let dialect = sim.dialect;
        let sim = broker_sim::spawn(sim).await.expect("broker-sim starts");
        let replicas = (0..replicas)
            .map(|_| spawn_replica(&sim.base_url(), redis_url, dialect, env))
            .collect();
        Cluster {
            redis,
            sim,
            replicas,
            http: reqwest::Client::new(),
        }
    }

    pub async fn default(env: Env) -> Cluster {
        Cluster::start(3, sim_config(), env).await
    }

    /// One more replica (generic dialect, the cluster's Redis), as a restarted pod;
    /// returns its index.
    pub fn add_replica(&mut self, env: Env) -> usize {
        let replica = spawn_replica(
            &self.sim.base_url(),
            &self.redis.url(),
            Dialect::Generic,
            env,
        );
        self.replicas.push(replica);
        self.replicas.len() - 1
    }

    /// SIGKILL: no shutdown, no release of anything it holds, as a crashed pod.
    pub fn kill(&mut self, replica: usize) {
        let _ = self.replicas[replica].child.kill();
        let _ = self.replicas[replica].child.wait();
    }

    /// Places a market buy at the broker directly (generic dialect), not through a
    /// replica; returns the broker's order id.
    pub async fn broker_buy(&self, symbol: &str) -> String {
        let order: Value = self
            .http
            .post(format!("{}/v1/orders", self.sim.base_url()))
            .bearer_auth(SIM_KEY)
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"symbol": symbol, "side": "buy", "type": "market",
                "quantity": "1", "time_in_force": "day"}))
            .send()
            .await
            .expect("the sim answers")
            .json()
            .await
            .expect("an order");
        order["id"]
            .as_str()
            .expect("the broker's order id")
            .to_string()
    }

    pub async fn graphql(&self, replica: usize, query: &str, variables: Value) -> Value {
        let url = format!("http://{}/graphql", self.replicas[replica].addr);
        let response = self
            .http
            .post(url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("the replica answers");
        assert_ne!(
            response.status().as_u16(),
            500,
            "a 500 from replica {replica}"
        );
        response.json().await.expect("a JSON answer")
    }

    /// A POST of `body` as it is (a persisted query's extensions, say), with a
    /// gateway key when given: the status and the JSON answer.
    pub async fn post(&self, replica: usize, key: Option<&str>, body: Value) -> (u16, Value) {
        let url = format!("http://{}/graphql", self.replicas[replica].addr);
        let mut request = self.http.post(url).json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("the replica answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    pub async fn data(&self, replica: usize, query: &str, variables: Value) -> Value {
        let body = self.graphql(replica, query, variables).await;
        assert!(body.get("errors").is_none(), "replica {replica}: {body:#}");
        body["data"].clone()
    }

    pub async fn metrics(&self, replica: usize) -> String {
        let url = format!("http://{}/metrics", self.replicas[replica].addr);
        let response = self.http.get(url).send().await.expect("metrics answers");
        response.text().await.expect("metrics text")
    }

    pub async fn readyz(&self, replica: usize) -> (u16, Value) {
        let url = format!("http://{}/readyz", self.replicas[replica].addr);
        let response = self.http.get(url).send().await.expect("readyz answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("readyz JSON"))
    }
}

/// Starts one gateway process and waits for its "listening" log line to learn
/// the port it bound (it listens on port 0).
fn spawn_replica(broker_url: &str, redis_url: &str, dialect: Dialect, env: Env) -> Replica {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brokergraph"));
    command
        .env_clear()
        .env("BROKERGRAPH_LISTEN", "127.0.0.1:0")
        .env("BROKERGRAPH_BROKER_URL", broker_url)
        .env("BROKERGRAPH_REDIS_URL", redis_url)
        .env("BROKERGRAPH_LOG_FORMAT", "json")
        .env("BROKERGRAPH_LOG_FILTER", "warn,brokergraph=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match dialect {
        Dialect::Generic => command.env("BROKERGRAPH_BROKER_API_KEY", SIM_KEY),
        // The sim takes an account's key as both key id and secret.
        Dialect::Alpaca => command
            .env("BROKERGRAPH_BROKER", "alpaca")
            .env("BROKERGRAPH_BROKER_KEY_ID", SIM_KEY)
            .env("BROKERGRAPH_BROKER_SECRET", SIM_KEY),
    };
    for (name, value) in env {
        command.env(format!("BROKERGRAPH_{name}"), value);
    }
    let mut child = command.spawn().expect("the brokergraph binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let kept = logs.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let addr = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["fields"]["addr"].as_str().map(str::to_string));
            match (addr, tx.as_ref()) {
                (Some(addr), Some(sender)) => {
                    let _ = sender.send(addr);
                    tx = None;
                }
                // Keep draining so the process never blocks on a full pipe; show
                // what it logged when a test fails.
                _ => {
                    eprintln!("[replica] {line}");
                    kept.lock().unwrap().push(line);
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the replica logs its address")
        .parse()
        .expect("a socket address");
    Replica { addr, child, logs }
}
