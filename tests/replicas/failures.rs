//! How replicas behave when Redis misbehaves: down (killed), hung (SIGSTOP), and
//! reached with a password that must never leak.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::common::sim_config;
use crate::helpers::{buy, cheap_symbol, DASHBOARD, LONG_TTLS, SUBMIT};
use crate::redis_server::RedisServer;

/// With Redis unusable: reads are answered, a submit is BROKER_UNAVAILABLE with
/// nothing sent to the broker, `/readyz` says degraded and why, `/metrics` too.
async fn assert_degraded(cluster: &Cluster, replica: usize, symbol: &str) {
    let read = cluster.graphql(replica, DASHBOARD, json!({})).await;
    assert!(read.get("errors").is_none(), "{read:#}");
    let orders_before = cluster.sim.stats().await.orders_created;
    let refused = cluster
        .graphql(replica, SUBMIT, buy(Uuid::new_v4(), symbol, "MARKET"))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("BROKER_UNAVAILABLE"),
        "{refused:#}"
    );
    assert_eq!(cluster.sim.stats().await.orders_created, orders_before);
    let (status, ready) = cluster.readyz(replica).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], json!("degraded"), "{ready}");
    assert_eq!(ready["redis"]["status"], json!("down"), "{ready}");
    let metrics = cluster.metrics(replica).await;
    assert!(metrics.contains("brokergraph_redis_up 0"), "{metrics}");
}

/// With Redis back, a submit goes through again (once the connection is back), no
/// restart needed, and `/readyz` says Redis is up.
async fn assert_recovered(cluster: &Cluster, replica: usize, symbol: &str) {
    let input = buy(Uuid::new_v4(), symbol, "MARKET");
    let mut placed = json!(null);
    for _ in 0..50 {
        placed = cluster.graphql(replica, SUBMIT, input.clone()).await;
        if placed.get("errors").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        placed["data"]["submitOrder"]["order"]["brokerOrderId"].is_string(),
        "{placed:#}"
    );
    let (_, ready) = cluster.readyz(replica).await;
    assert_eq!(ready["redis"]["status"], json!("up"), "{ready}");
}

#[tokio::test]
async fn with_redis_down_reads_are_served_and_submits_refused_until_it_is_back() {
    let mut cluster = Cluster::default(LONG_TTLS).await;
    let symbol = cheap_symbol(&cluster).await;
    cluster.data(1, DASHBOARD, json!({})).await;
    cluster.redis.kill();
    assert_degraded(&cluster, 1, &symbol).await;
    cluster.redis.restart();
    assert_recovered(&cluster, 1, &symbol).await;
    assert_eq!(cluster.sim.stats().await.orders_created, 1);
}

/// A Redis that accepts connections but never answers must not hang anything:
/// every Redis call is bounded by `redis.timeout_ms`.
#[tokio::test]
async fn a_hung_redis_bounds_submits_with_broker_unavailable_and_reads_go_on() {
    let env: crate::cluster::Env = &[
        ("REDIS_TIMEOUT_MS", "300"),
        ("CACHE_ORDERS_TTL_MS", "60000"),
        ("CACHE_ACCOUNT_TTL_MS", "60000"),
        ("CACHE_POSITIONS_TTL_MS", "60000"),
    ];
    let cluster = Cluster::default(env).await;
    let symbol = cheap_symbol(&cluster).await;
    cluster.data(0, DASHBOARD, json!({})).await;
    cluster.redis.pause();
    assert_degraded(&cluster, 0, &symbol).await;
    cluster.redis.resume();
    assert_recovered(&cluster, 0, &symbol).await;
    assert_eq!(cluster.sim.stats().await.orders_created, 1);
}

const PASSWORD: &str = "REDISPASS-q7v2k-do-not-leak";

/// One replica with the right password works; one with a wrong password refuses
/// submits; neither says the password in a log line, an answer or `/readyz`.
#[tokio::test]
async fn the_redis_password_never_appears_in_logs_or_answers() {
    let redis = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let good = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let cluster = Cluster::start_on(redis, &good, 1, sim_config(), LONG_TTLS).await;
    let symbol = cheap_symbol(&cluster).await;
    let placed = cluster
        .data(0, SUBMIT, buy(Uuid::new_v4(), &symbol, "MARKET"))
        .await;
    assert!(placed["submitOrder"]["order"]["brokerOrderId"].is_string());

    let wrong = format!("redis://:{PASSWORD}-wrong@127.0.0.1:{}", cluster.redis.port);
    let other = Cluster::start_on(RedisServer::start(), &wrong, 1, sim_config(), &[]).await;
    let refused = other
        .graphql(0, SUBMIT, buy(Uuid::new_v4(), &symbol, "MARKET"))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("BROKER_UNAVAILABLE")
    );
    let (_, ready) = other.readyz(0).await;
    assert_eq!(ready["redis"]["status"], json!("down"), "{ready}");

    let mut seen = vec![refused.to_string(), ready.to_string(), placed.to_string()];
    seen.extend(cluster.replicas[0].logs());
    seen.extend(other.replicas[0].logs());
    for text in &seen {
        assert!(
            !text.contains(PASSWORD),
            "the Redis password leaked: {text}"
        );
    }
    assert!(
        seen.iter().any(|l| l.contains("redis")),
        "the failing replica logged nothing about Redis: {seen:?}"
    );
}
