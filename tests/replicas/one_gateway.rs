//! What a client sees across replicas: an order placed on one is listed and
//! canceled on the others at once, and a key submitted to all three places one order,
//! even when the replica holding it dies.

use std::time::Duration;

use broker_sim::{Dialect, SimConfig};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cluster::{self, Cluster};
use crate::common::sim_config;
use crate::helpers::{buy, cheap_symbol, LONG_TTLS, SUBMIT};

const ORDERS: &str = "{ orders(first: 50) { nodes { id brokerOrderId status } } }";

fn order_ids(data: &Value) -> Vec<String> {
    data["orders"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["brokerOrderId"].as_str().unwrap().to_string())
        .collect()
}

async fn a_submit_on_one_replica_shows_in_an_orders_query_on_another_at_once(dialect: Dialect) {
    let sim = SimConfig {
        dialect,
        ..sim_config()
    };
    let cluster = Cluster::start(3, sim, LONG_TTLS).await;
    let symbol = cheap_symbol(&cluster).await;
    for b in [1, 2] {
        cluster.data(b, ORDERS, json!({})).await; // cached on B and C
    }
    let submitted = cluster
        .data(0, SUBMIT, buy(Uuid::new_v4(), &symbol, "LIMIT"))
        .await;
    let broker_id = submitted["submitOrder"]["order"]["brokerOrderId"]
        .as_str()
        .expect("an order")
        .to_string();
    let gid = submitted["submitOrder"]["order"]["id"].clone();
    for b in [1, 2] {
        let listed = cluster.data(b, ORDERS, json!({})).await;
        assert!(
            order_ids(&listed).contains(&broker_id),
            "replica {b} does not list the order just placed on replica 0: {listed:#}"
        );
    }

    // Cached by id on replica 1, canceled on replica 2, read again on replica 1.
    let by_id = "query($id: ID!) { order(id: $id) { status } }";
    let open = cluster.data(1, by_id, json!({ "id": gid })).await;
    assert_ne!(open["order"]["status"], json!("CANCELED"));
    let cancel = "mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { order { status } userErrors { code } } }";
    let canceled = cluster.data(2, cancel, json!({ "id": gid })).await;
    assert_eq!(
        canceled["cancelOrder"]["order"]["status"],
        json!("CANCELED")
    );
    let seen = cluster.data(1, by_id, json!({ "id": gid })).await;
    assert_eq!(
        seen["order"]["status"],
        json!("CANCELED"),
        "replica 1 still serves the open order"
    );
}

// What depends on the broker's dialect (its own dedup, its cancel answer), in both.
crate::in_both_dialects!(
    a_submit_on_one_replica_shows_in_an_orders_query_on_another_at_once,
    thirty_concurrent_submits_of_one_key_over_three_replicas_place_one_order,
);

/// Submits until the answer is not IDEMPOTENCY_KEY_IN_USE (the bounded answer while
/// another replica holds the key), as a client following the docs would.
async fn submit_settled(cluster: &Cluster, replica: usize, input: &Value) -> Value {
    for _ in 0..100 {
        let body = cluster.graphql(replica, SUBMIT, input.clone()).await;
        if body["errors"][0]["extensions"]["code"] != json!("IDEMPOTENCY_KEY_IN_USE") {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the key stayed in use for 10 s");
}

/// Also in the Alpaca dialect, where the broker's own dedup is `client_order_id`
/// and a duplicate is read back rather than replayed by the broker.
async fn thirty_concurrent_submits_of_one_key_over_three_replicas_place_one_order(
    dialect: Dialect,
) {
    let sim = SimConfig {
        dialect,
        ..sim_config()
    };
    let cluster = Cluster::start(3, sim, &[]).await;
    let symbol = cheap_symbol(&cluster).await;
    let input = buy(Uuid::new_v4(), &symbol, "MARKET");
    let answers =
        futures::future::join_all((0..30).map(|i| submit_settled(&cluster, i % 3, &input))).await;
    let mut fresh = 0;
    let mut ids = std::collections::BTreeSet::new();
    for body in &answers {
        let payload = &body["data"]["submitOrder"];
        assert!(body.get("errors").is_none(), "{body:#}");
        assert_eq!(payload["userErrors"], json!([]), "{body:#}");
        ids.insert(
            payload["order"]["brokerOrderId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        if payload["replayed"] == json!(false) {
            fresh += 1;
        }
    }
    assert_eq!(ids.len(), 1, "different orders: {ids:?}");
    assert_eq!(
        fresh, 1,
        "exactly one answer is the original, 29 are replays"
    );
    let stats = cluster.sim.stats().await;
    assert_eq!(stats.orders_created, 1, "{stats:?}");
}

/// The replica holding the claim dies while its broker call hangs; the client's
/// retry on another replica waits out the lease and settles the key with one order.
#[tokio::test]
async fn a_replica_killed_while_holding_the_claim_leaves_one_order_after_a_retry() {
    let env: cluster::Env = &[
        ("IDEMPOTENCY_LEASE_MS", "2000"),
        ("IDEMPOTENCY_RESEND_DEADLINE_MS", "1000"),
        ("IDEMPOTENCY_WAIT_MS", "200"),
        // Bounds the hung broker call if the test itself goes wrong.
        ("BROKER_REQUEST_TIMEOUT_MS", "3000"),
    ];
    let mut cluster = Cluster::default(env).await;
    let symbol = cheap_symbol(&cluster).await;
    cluster
        .sim
        .set_faults(json!({ "rules": [{ "route": "POST /v1/orders", "kind": "hang" }] }))
        .await;
    let input = buy(Uuid::new_v4(), &symbol, "MARKET");
    let (url, http, body) = (
        format!("http://{}/graphql", cluster.replicas[0].addr),
        cluster.http.clone(),
        json!({ "query": SUBMIT, "variables": input }),
    );
    let doomed = tokio::spawn(async move { http.post(url).json(&body).send().await });

    // Wait until replica 0 holds the claim (its in-flight record is in Redis); only
    // then may replica 1 try, or replica 1 could win the claim and hang instead.
    let record = format!(
        "brokergraph:idem:*:{}",
        input["input"]["idempotencyKey"].as_str().unwrap()
    );
    let mut held = false;
    for _ in 0..100 {
        let reply = cluster.redis.command(&["KEYS", &record]);
        if reply.contains(":idem:") {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held, "replica 0 never claimed the key");
    let busy = cluster.graphql(1, SUBMIT, input.clone()).await;
    assert_eq!(
        busy["errors"][0]["extensions"]["code"],
        json!("IDEMPOTENCY_KEY_IN_USE"),
        "{busy:#}"
    );
    cluster.kill(0);
    assert!(
        doomed.await.unwrap().is_err(),
        "the killed replica answered"
    );
    cluster.sim.clear_faults().await;

    let settled = submit_settled(&cluster, 1, &input).await;
    let payload = &settled["data"]["submitOrder"];
    assert!(payload["order"]["brokerOrderId"].is_string(), "{settled:#}");
    let again = submit_settled(&cluster, 2, &input).await;
    assert_eq!(
        again["data"]["submitOrder"]["replayed"],
        json!(true),
        "{again:#}"
    );
    assert_eq!(
        again["data"]["submitOrder"]["order"]["brokerOrderId"],
        payload["order"]["brokerOrderId"]
    );
    assert_eq!(cluster.sim.stats().await.orders_created, 1);
}
