//! The Alpaca dialect over HTTP: auth headers, Alpaca-shaped JSON and errors,
//! client_order_id uniqueness, the 204 cancel, time paging, shared stats and faults.

use broker_sim::{Dialect, SimConfig, SimHandle};
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};

const KEY: &str = "alpaca-key";

async fn sim() -> SimHandle {
    broker_sim::spawn(SimConfig {
        api_keys: vec![KEY.into()],
        tick_ms: 0,
        instruments: 100,
        rate_limit: 10_000,
        dialect: Dialect::Alpaca,
        ..Default::default()
    })
    .await
    .unwrap()
}

fn auth(r: RequestBuilder) -> RequestBuilder {
    r.header("APCA-API-KEY-ID", KEY)
        .header("APCA-API-SECRET-KEY", KEY)
}

async fn call(r: RequestBuilder) -> (u16, Value) {
    let resp = auth(r).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn tradable_lot_one(sim: &SimHandle, http: &Client) -> String {
    let (_, assets) = call(http.get(format!("{}/v2/assets", sim.base_url()))).await;
    let asset = assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tradable"] == json!(true) && a["min_trade_increment"] == json!("1"))
        .unwrap();
    let symbol = asset["symbol"].as_str().unwrap().to_string();
    sim.set_price(&symbol, "10.00").await;
    symbol
}

#[tokio::test]
async fn credentials_are_the_apca_headers_and_errors_are_alpaca_shaped() {
    let sim = sim().await;
    let http = Client::new();
    let resp = http
        .get(format!("{}/v2/account", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("x-ratelimit-limit"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], json!(40110000));
    let (status, account) = call(http.get(format!("{}/v2/account", sim.base_url()))).await;
    assert_eq!(status, 200);
    assert_eq!(account["status"], "ACTIVE");
    assert!(account["cash"].is_string());
}

#[tokio::test]
async fn a_client_order_id_is_unique_and_a_cancel_is_204() {
    let sim = sim().await;
    let http = Client::new();
    let symbol = tradable_lot_one(&sim, &http).await;
    let order = json!({"symbol": symbol, "qty": "1", "side": "buy", "type": "limit",
        "limit_price": "5.00", "time_in_force": "gtc", "client_order_id": "my-id-1"});
    let url = format!("{}/v2/orders", sim.base_url());
    let (status, created) = call(http.post(&url).json(&order)).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["status"], "pending_new", "routed on the next tick");
    assert_eq!(created["filled_avg_price"], Value::Null);
    let (status, dup) = call(http.post(&url).json(&order)).await;
    assert_eq!(
        (status, dup["message"].as_str()),
        (422, Some("client_order_id must be unique"))
    );
    let (_, found) = call(http.get(format!(
        "{}/v2/orders:by_client_order_id?client_order_id=my-id-1",
        sim.base_url()
    )))
    .await;
    assert_eq!(found["id"], created["id"]);
    let one = format!("{url}/{}", created["id"].as_str().unwrap());
    let resp = auth(http.delete(&one)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (_, after) = call(http.get(&one)).await;
    assert_eq!(after["status"], "canceled");
    let (status, _) = call(http.delete(&one)).await;
    assert_eq!(status, 422, "a canceled order is not cancelable");
    let stats = sim.stats().await;
    assert_eq!(stats.orders_created, 1);
    assert_eq!(stats.duplicates_prevented, 1);
    assert_eq!(stats.count_status("POST /v2/orders", 422), 1);
}

#[tokio::test]
async fn orders_page_by_time_with_until_and_limit() {
    let sim = sim().await;
    let http = Client::new();
    let symbol = tradable_lot_one(&sim, &http).await;
    let url = format!("{}/v2/orders", sim.base_url());
    for _ in 0..5 {
        let order = json!({"symbol": symbol, "qty": 1, "side": "buy", "type": "market",
            "time_in_force": "day"});
        assert_eq!(call(http.post(&url).json(&order)).await.0, 200);
    }
    // Accepted asynchronously: the next tick routes and fills them.
    sim.tick(1).await;
    let (_, all) = call(http.get(format!("{url}?status=all&limit=500"))).await;
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 5);
    let (_, open) = call(http.get(&url)).await;
    assert_eq!(
        open,
        json!([]),
        "the default is status=open; market orders filled"
    );
    let until = all[1]["submitted_at"].as_str().unwrap();
    let (_, older) = call(http.get(&url).query(&[
        ("status", "all"),
        ("until", until),
        ("limit", "2"),
        ("direction", "desc"),
    ]))
    .await;
    let ids: Vec<&Value> = older.as_array().unwrap().iter().map(|o| &o["id"]).collect();
    assert_eq!(ids, vec![&all[2]["id"], &all[3]["id"]]);
    let (status, _) = call(http.get(format!("{url}?limit=501"))).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn faults_and_stats_use_the_v2_route_keys() {
    let sim = sim().await;
    sim.set_faults(
        json!({"rules": [{"route": "GET /v2/account", "kind": "status", "status": 503}]}),
    )
    .await;
    let http = Client::new();
    let (status, body) = call(http.get(format!("{}/v2/account", sim.base_url()))).await;
    assert_eq!(status, 503);
    assert!(body["message"].is_string());
    assert_eq!(sim.stats().await.count_status("GET /v2/account", 503), 1);
}

#[tokio::test]
async fn a_patch_replaces_under_a_new_unique_client_order_id() {
    let sim = sim().await;
    let http = Client::new();
    let symbol = tradable_lot_one(&sim, &http).await;
    let url = format!("{}/v2/orders", sim.base_url());
    let order = json!({"symbol": symbol, "qty": "2", "side": "buy", "type": "limit",
        "limit_price": "5.00", "time_in_force": "gtc", "client_order_id": "orig"});
    let (_, old) = call(http.post(&url).json(&order)).await;
    sim.tick(1).await;
    let one = format!("{url}/{}", old["id"].as_str().unwrap());
    let change = json!({"qty": 3, "limit_price": "5.25", "client_order_id": "repl-1"});
    let (status, new) = call(http.patch(&one).json(&change)).await;
    assert_eq!(status, 200, "{new}");
    assert_eq!(
        (&new["replaces"], &new["client_order_id"], &new["qty"]),
        (&old["id"], &json!("repl-1"), &json!("3"))
    );
    assert_eq!(new["limit_price"], "5.25");
    let (_, before) = call(http.get(&one)).await;
    assert_eq!(
        (&before["status"], &before["replaced_by"]),
        (&json!("replaced"), &new["id"])
    );
    assert!(before["replaced_at"].is_string() && before["canceled_at"].is_null());
    // The client order id is unique like a submit's: never a second replacement.
    let (status, dup) = call(
        http.patch(format!("{url}/{}", new["id"].as_str().unwrap()))
            .json(&change),
    )
    .await;
    assert_eq!(
        (status, &dup["message"]),
        (422, &json!("client_order_id must be unique"))
    );
    let (status, over) = call(http.patch(&one).json(&json!({"qty": "4"}))).await;
    assert_eq!((status, &over["code"]), (422, &json!(42210000)));
    assert_eq!(sim.stats().await.orders_created, 2);
}
