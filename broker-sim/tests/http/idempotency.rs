//! Idempotency-Key on POST /v1/orders, with Stripe's semantics.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_replay_returns_the_stored_response_verbatim() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let body = limit(&sym, "buy", "3", "0.01");
    let first = api.order(body.clone(), Some("key-1")).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["idempotency_key"], "key-1");
    assert_eq!(first.header("idempotent-replayed"), None);
    // The order changes afterwards; the replay still shows it as it was created.
    api.delete(&format!(
        "/v1/orders/{}",
        first.body["id"].as_str().unwrap()
    ))
    .await;
    let replay = api.order(body, Some("key-1")).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert!(replay.headers.contains_key("x-ratelimit-remaining"));
    let s = sim.stats().await;
    assert_eq!(
        (
            s.orders_created,
            s.idempotent_replays,
            s.duplicates_prevented
        ),
        (1, 1, 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn same_parameters_in_another_order_or_spacing_are_the_same_body() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let a = format!(r#"{{"symbol":"{sym}","side":"buy","type":"market","quantity":"2"}}"#);
    let b = format!(r#"{{ "quantity": "2", "type": "market", "side": "buy", "symbol": "{sym}" }}"#);
    assert_eq!(api.post_raw("/v1/orders", &a, Some("k")).await.status, 201);
    assert_eq!(api.post_raw("/v1/orders", &b, Some("k")).await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_key_reused_with_a_different_body_is_422() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    assert_eq!(
        api.order(market(&sym, "buy", "1"), Some("k")).await.status,
        201
    );
    let r = api.order(market(&sym, "buy", "2"), Some("k")).await;
    assert_eq!((r.status, r.code()), (422, "idempotency_key_reused"));
    assert_eq!(sim.stats().await.orders_created, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn keys_are_scoped_per_api_key_and_failed_requests_store_nothing() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let other = Api::with_key(&sim, "other-key");
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let r = api.order(market("NOSUCH", "buy", "1"), Some("k")).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        api.order(market(&sym, "buy", "1"), Some("k")).await.status,
        201,
        "a rejected submit does not burn the key"
    );
    assert_eq!(
        other
            .order(market(&sym, "buy", "1"), Some("k"))
            .await
            .status,
        201
    );
    assert_eq!(sim.stats().await.orders_created, 2);
    let r = api
        .order(market(&sym, "buy", "1"), Some(&"x".repeat(300)))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_idempotency_key"));
    sim.shutdown().await;
}

#[tokio::test]
async fn fifty_concurrent_posts_with_one_key_create_exactly_one_order() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Arc::new(Api::new(&sim));
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let body = market(&sym, "buy", "1");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (api, body) = (api.clone(), body.clone());
            tokio::spawn(async move { api.order(body, Some("same-key")).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => created.push(r.body["id"].clone()),
            200 => assert_eq!(r.header("idempotent-replayed"), Some("true")),
            409 => assert_eq!(r.code(), "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {}", r.body),
        }
        if let Some(id) = r.body["id"].as_str() {
            ids.insert(id.to_owned());
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(ids.len(), 1, "every success names the same order");
    assert_eq!(sim.stats().await.orders_created, 1);
    assert_eq!(
        api.get("/v1/orders").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_while_the_first_is_in_flight_is_409_then_replays() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Arc::new(Api::new(&sim));
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    sim.set_faults(json!({"rules": [{"route": "POST /v1/orders", "kind": "latency", "ms": 400}]}))
        .await;
    let body = market(&sym, "buy", "1");
    let first = {
        let (api, body) = (api.clone(), body.clone());
        tokio::spawn(async move { api.order(body, Some("slow")).await })
    };
    // Wait until the first request holds the key.
    while sim.stats().await.idempotency_keys == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = api.order(body.clone(), Some("slow")).await;
    assert_eq!(
        (second.status, second.code()),
        (409, "idempotency_key_in_use")
    );
    let first = first.await.unwrap();
    assert_eq!(first.status, 201);
    sim.clear_faults().await;
    let third = api.order(body, Some("slow")).await;
    assert_eq!((third.status, &third.body), (200, &first.body));
    let s = sim.stats().await;
    assert_eq!((s.orders_created, s.idempotency_conflicts), (1, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn posts_without_a_key_are_accepted_and_counted() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let a = api.order(market(&sym, "buy", "1"), None).await;
    let b = api.order(market(&sym, "buy", "1"), None).await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(a.body["idempotency_key"], serde_json::Value::Null);
    let s = sim.stats().await;
    assert_eq!((s.orders_created, s.posts_without_idempotency_key), (2, 2));
    sim.shutdown().await;
}
