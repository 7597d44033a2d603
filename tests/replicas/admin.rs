//! Accounts linked through the admin API on three replicas sharing one Redis: added
//! on one, usable at once on the others; removed on one, refused at once on all;
//! and loaded by a replica started afterwards. The accounts in Redis are sealed.

use serde_json::{json, Value};

use crate::cluster::{Cluster, Env};
use crate::common::idp::{self, Idp};
use crate::common::sim_config;

const ADMIN_TOKEN: &str = "replica-admin-token-0123456789abcdef";
const SIM_KEY_B: &str = "replica-broker-key-b";
const WHO: &str = "{ account { id accountNumber } }";

async fn as_user(cluster: &Cluster, replica: usize, token: &str) -> (u16, Value) {
    let response = cluster
        .http
        .post(format!("http://{}/graphql", cluster.replicas[replica].addr))
        .bearer_auth(token)
        .json(&json!({ "query": WHO }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn admin(
    cluster: &Cluster,
    replica: usize,
    method: reqwest::Method,
    body: Option<Value>,
) -> u16 {
    let url = format!(
        "http://{}/admin/accounts/desk-b",
        cluster.replicas[replica].addr
    );
    let mut request = cluster.http.request(method, url).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn an_account_linked_on_one_replica_serves_on_all_and_unlinked_is_refused_on_all() {
    let idp = Idp::start().await;
    let jwks = Box::leak(idp.jwks_url().into_boxed_str());
    let env: Env = Box::leak(
        vec![
            ("ADMIN_TOKEN", ADMIN_TOKEN),
            (
                "STORE_KEY",
                Box::leak(hex::encode(rand::random::<[u8; 32]>()).into_boxed_str()) as &str,
            ),
            ("AUTH_JWT_JWKS_URL", jwks),
            ("AUTH_JWT_ISSUER", idp::ISSUER),
            ("AUTH_JWT_AUDIENCE", idp::AUDIENCE),
        ]
        .into_boxed_slice(),
    );
    let mut sim = sim_config();
    sim.api_keys.push(SIM_KEY_B.to_string());
    let mut cluster = Cluster::start(3, sim, env).await;
    let bob = idp.token("bob", "desk-b");
    for replica in 0..3 {
        assert_eq!(as_user(&cluster, replica, &bob).await.0, 403);
    }

    let body = json!({ "url": cluster.sim.base_url(), "api_key": SIM_KEY_B });
    assert_eq!(
        admin(&cluster, 0, reqwest::Method::PUT, Some(body.clone())).await,
        201
    );
    let (status, on_a) = as_user(&cluster, 0, &bob).await;
    assert_eq!(status, 200, "{on_a}");
    for replica in [1, 2] {
        let (status, on_other) = as_user(&cluster, replica, &bob).await;
        assert_eq!(status, 200, "replica {replica}: {on_other}");
        assert_eq!(on_other["data"], on_a["data"]);
    }
    // Sealed in Redis: neither the key nor the URL in clear.
    let stored = cluster.redis.command(&["HGETALL", "brokergraph:accounts"]);
    assert!(
        stored.contains("desk-b") && !stored.contains(SIM_KEY_B),
        "{stored}"
    );

    assert_eq!(admin(&cluster, 1, reqwest::Method::DELETE, None).await, 204);
    for replica in 0..3 {
        let (status, body) = as_user(&cluster, replica, &bob).await;
        assert_eq!(status, 403, "replica {replica}: {body}");
    }

    // Linked again, then a replica started afterwards serves it from Redis.
    assert_eq!(
        admin(&cluster, 2, reqwest::Method::PUT, Some(body)).await,
        201
    );
    let late = cluster.add_replica(env);
    let (status, on_late) = as_user(&cluster, late, &bob).await;
    assert_eq!(status, 200, "{on_late}");
    assert_eq!(on_late["data"], on_a["data"]);
}
