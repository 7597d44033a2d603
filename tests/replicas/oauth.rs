//! Three replicas on one Redis sharing one OAuth account: the token store and its
//! lock are in Redis, so each expiry costs one refresh across all of them; with a
//! rotating refresh token, a second refresh of the same token would make
//! broker-sim revoke the family, and every later request would fail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use broker_sim::SimConfig;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cluster::Cluster;
use crate::common::sim_config;

const KEY: &str = "replica-oauth-key";

/// A port free a moment ago: the sim's URL must be in the replicas' config
/// before the sim starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn three_replicas_refresh_a_shared_oauth_account_once_per_expiry() {
    let port = free_port();
    let sim_url = format!("http://127.0.0.1:{port}");
    let config = format!(
        r#"
[cache]
account_ttl_ms = 1

[rate_limit]
per_minute = 0

[[accounts]]
id = "tokens"
url = "{sim_url}"
[accounts.oauth]
token_url = "{sim_url}/oauth/token"
client_id = "app"
client_secret = "app-secret"

[[keys]]
id = "k"
sha256 = "{}"
scopes = ["read"]
account = "tokens"
"#,
        hex::encode(Sha256::digest(KEY))
    );
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("replicas-oauth-{}.toml", std::process::id()));
    std::fs::write(&path, config).unwrap();
    let env: Vec<(&'static str, &'static str)> = vec![
        (
            "CONFIG",
            Box::leak(path.display().to_string().into_boxed_str()),
        ),
        (
            "STORE_KEY",
            Box::leak(hex::encode(rand::random::<[u8; 32]>()).into_boxed_str()),
        ),
    ];
    let sim = SimConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        oauth_clients: vec![("app".into(), "app-secret".into())],
        token_ttl_secs: 2,
        ..sim_config()
    };
    let cluster = Arc::new(Cluster::start(3, sim, Box::leak(env.into_boxed_slice())).await);

    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..30)
        .map(|n| {
            let (cluster, failures, done) = (cluster.clone(), failures.clone(), done.clone());
            tokio::spawn(async move {
                let url = format!("http://{}/graphql", cluster.replicas[n % 3].addr);
                while !done.load(Ordering::Relaxed) {
                    // A broker call of its own (the cache coalesces equal reads).
                    let id = URL_SAFE_NO_PAD.encode(format!("Order:{}", uuid::Uuid::new_v4()));
                    let query = format!("{{ account {{ cash }} order(id: \"{id}\") {{ id }} }}");
                    let body: Value = cluster
                        .http
                        .post(&url)
                        .bearer_auth(KEY)
                        .json(&json!({ "query": query }))
                        .send()
                        .await
                        .expect("the replica answers")
                        .json()
                        .await
                        .expect("JSON");
                    if body.get("errors").is_some() || !body["data"]["account"]["cash"].is_string()
                    {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("replica {}: {body}", n % 3);
                    }
                }
            })
        })
        .collect();
    // Until four refreshes: several token lifetimes, however fast this machine runs.
    loop {
        let oauth = cluster.sim.stats().await.oauth;
        if oauth.refreshed >= 4 || oauth.reuse_revoked > 0 || failures.load(Ordering::Relaxed) > 0 {
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
    let oauth = cluster.sim.stats().await.oauth;
    assert_eq!(oauth.reuse_revoked, 0, "{oauth:?}");
    // One client_credentials grant for all three, then one refresh per token.
    assert_eq!(oauth.issued, oauth.refreshed + 1, "{oauth:?}");
    assert!(oauth.expired_rejected <= oauth.refreshed, "{oauth:?}");
    // The tokens in Redis are sealed: no token in clear.
    let keys = cluster.redis.command(&["KEYS", "*tokens*"]);
    assert!(keys.contains("tokens:tokens"), "{keys}");
    let stored = cluster.redis.command(&["GET", "brokergraph:tokens:tokens"]);
    assert!(!stored.contains("at_") && !stored.contains("rt_"), "sealed");
}
