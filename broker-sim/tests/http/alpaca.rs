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

async fn sim_with(shorting: bool) -> SimHandle {
    broker_sim::spawn(SimConfig {
        api_keys: vec![KEY.into()],
        tick_ms: 0,
        instruments: 100,
        rate_limit: 10_000,
        dialect: Dialect::Alpaca,
        shorting,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn market(sim: &SimHandle, http: &Client, symbol: &str, side: &str, qty: &str) -> Value {
    let order = json!({"symbol": symbol, "qty": qty, "side": side, "type": "market",
        "time_in_force": "day"});
    let (status, placed) = call(
        http.post(format!("{}/v2/orders", sim.base_url()))
            .json(&order),
    )
    .await;
    assert_eq!(status, 200, "{placed}");
    sim.tick(1).await;
    placed
}

#[tokio::test]
async fn assets_are_found_by_id_and_filtered_by_status_class_and_exchange() {
    let sim = sim().await;
    let http = Client::new();
    let base = sim.base_url();
    let (_, all) = call(http.get(format!("{base}/v2/assets"))).await;
    let all = all.as_array().unwrap().clone();
    let first = &all[0];
    assert!(
        first.get("price_increment").is_none(),
        "equities have none at Alpaca"
    );
    let (status, by_id) = call(http.get(format!(
        "{base}/v2/assets/{}",
        first["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!((status, &by_id), (200, first));
    let exchange = first["exchange"].as_str().unwrap();
    let (_, listed) = call(http.get(format!(
        "{base}/v2/assets?exchange={exchange}&status=active&asset_class=us_equity"
    )))
    .await;
    let listed = listed.as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() < all.len());
    assert!(listed.iter().all(|a| a["exchange"] == json!(exchange)));
    for empty in ["status=inactive", "asset_class=crypto", "exchange=OTC"] {
        let (_, none) = call(http.get(format!("{base}/v2/assets?{empty}"))).await;
        assert_eq!(none, json!([]), "{empty}");
    }
    // An asset id works as an order's symbol.
    let symbol = tradable_lot_one(&sim, &http).await;
    let (_, asset) = call(http.get(format!("{base}/v2/assets/{symbol}"))).await;
    let placed = market(&sim, &http, asset["id"].as_str().unwrap(), "buy", "1").await;
    assert_eq!(placed["symbol"], json!(symbol));
}

#[tokio::test]
async fn orders_filter_by_side_and_positions_show_what_open_orders_leave() {
    let sim = sim().await;
    let http = Client::new();
    let base = sim.base_url();
    let symbol = tradable_lot_one(&sim, &http).await;
    market(&sim, &http, &symbol, "buy", "5").await;
    let sell = json!({"symbol": symbol, "qty": "2", "side": "sell", "type": "limit",
        "limit_price": "20.00", "time_in_force": "gtc"});
    assert_eq!(
        call(http.post(format!("{base}/v2/orders")).json(&sell))
            .await
            .0,
        200
    );
    let (_, sells) = call(http.get(format!("{base}/v2/orders?status=all&side=sell"))).await;
    let sells = sells.as_array().unwrap();
    assert_eq!(sells.len(), 1);
    assert_eq!(sells[0]["side"], "sell");
    let (_, buys) = call(http.get(format!("{base}/v2/orders?status=all&side=buy"))).await;
    assert_eq!(buys.as_array().unwrap().len(), 1);
    assert_eq!(
        call(http.get(format!("{base}/v2/orders?side=short")))
            .await
            .0,
        422
    );
    let (status, held) = call(http.get(format!("{base}/v2/positions/{symbol}"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&held["qty"], &held["qty_available"], &held["side"]),
        (&json!("5"), &json!("3"), &json!("long"))
    );
    // Selling more than is available: 403, as Alpaca refuses it.
    let too_many = json!({"symbol": symbol, "qty": "4", "side": "sell", "type": "market",
        "time_in_force": "day"});
    let (status, refused) = call(http.post(format!("{base}/v2/orders")).json(&too_many)).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], json!(40310000));
    assert_eq!(
        refused["message"],
        "insufficient qty available for order (requested: 4, available: 3)"
    );
    assert_eq!(
        (
            &refused["available"],
            &refused["existing_qty"],
            &refused["held_for_orders"]
        ),
        (&json!("3"), &json!("5"), &json!("2"))
    );
}

#[tokio::test]
async fn a_position_is_closed_by_delete_and_the_sub_penny_rule_holds() {
    let sim = sim_with(true).await;
    let http = Client::new();
    let base = sim.base_url();
    let symbol = tradable_lot_one(&sim, &http).await;
    let (status, missing) = call(http.get(format!("{base}/v2/positions/{symbol}"))).await;
    assert_eq!((status, &missing["code"]), (404, &json!(40410000)));
    market(&sim, &http, &symbol, "buy", "6").await;
    let one = format!("{base}/v2/positions/{symbol}");
    let (status, half) = call(http.delete(format!("{one}?percentage=50"))).await;
    assert_eq!(status, 200, "{half}");
    assert_eq!(
        (&half["side"], &half["qty"], &half["type"], &half["status"]),
        (
            &json!("sell"),
            &json!("3"),
            &json!("market"),
            &json!("pending_new")
        )
    );
    sim.tick(1).await;
    let (_, rest) = call(http.delete(&one)).await;
    assert_eq!(rest["qty"], "3");
    sim.tick(1).await;
    assert_eq!(call(http.get(&one)).await.0, 404);
    // A short, with shorting on, is closed by a buy.
    market(&sim, &http, &symbol, "sell", "2").await;
    let (_, short) = call(http.get(&one)).await;
    assert_eq!(
        (&short["qty"], &short["side"]),
        (&json!("-2"), &json!("short"))
    );
    let (status, over) = call(http.delete(format!("{one}?qty=5"))).await;
    assert_eq!((status, &over["code"]), (403, &json!(40310000)));
    let (_, cover) = call(http.delete(&one)).await;
    assert_eq!(
        (&cover["side"], &cover["qty"]),
        (&json!("buy"), &json!("2"))
    );
    let (_, config) = call(http.get(format!("{base}/v2/account/configurations"))).await;
    assert_eq!(config["no_shorting"], json!(false));
    // Whole cents at $1 and above, whatever the instrument's own tick.
    let order = |price: &str| {
        json!({"symbol": symbol, "qty": "1", "side": "buy",
        "type": "limit", "limit_price": price, "time_in_force": "gtc"})
    };
    let (status, sub) = call(http.post(format!("{base}/v2/orders")).json(&order("9.001"))).await;
    assert_eq!((status, &sub["code"]), (422, &json!(42210000)));
    assert!(sub["message"].as_str().unwrap().contains("sub-penny"));
    assert_eq!(
        call(http.post(format!("{base}/v2/orders")).json(&order("9.01")))
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            http.post(format!("{base}/v2/orders"))
                .json(&order("0.9901"))
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn delete_orders_cancels_every_open_order_with_a_status_each() {
    let sim = sim().await;
    let http = Client::new();
    let base = sim.base_url();
    let symbol = tradable_lot_one(&sim, &http).await;
    let resting = json!({"symbol": symbol, "qty": "1", "side": "buy", "type": "limit",
        "limit_price": "5.00", "time_in_force": "gtc"});
    for _ in 0..2 {
        call(http.post(format!("{base}/v2/orders")).json(&resting)).await;
    }
    let done = market(&sim, &http, &symbol, "buy", "1").await;
    let resp = auth(http.delete(format!("{base}/v2/orders")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 207);
    let answers: Value = resp.json().await.unwrap();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 2, "the filled order is not open");
    for a in answers {
        assert_eq!(a["status"], json!(200));
        assert_eq!(a["body"]["status"], "canceled");
        assert_ne!(a["id"], done["id"]);
    }
    let (_, open) = call(http.get(format!("{base}/v2/orders"))).await;
    assert_eq!(open, json!([]));
}

#[tokio::test]
async fn the_account_clock_and_unknown_routes_look_like_alpacas() {
    let sim = sim().await;
    let http = Client::new();
    let base = sim.base_url();
    let (_, before) = call(http.get(format!("{base}/v2/account"))).await;
    let symbol = tradable_lot_one(&sim, &http).await;
    market(&sim, &http, &symbol, "buy", "1").await;
    let (_, after) = call(http.get(format!("{base}/v2/account"))).await;
    assert_ne!(after["cash"], before["cash"]);
    assert_eq!(after["created_at"], before["created_at"], "opened once");

    let (_, clock) = call(http.get(format!("{base}/v2/clock"))).await;
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(clock[k].as_str().unwrap()).unwrap();
    let (now, open, close) = (at("timestamp"), at("next_open"), at("next_close"));
    assert!(open > now && close > now);
    assert_eq!(
        clock["is_open"],
        json!(close < open),
        "open now exactly when the close comes first"
    );
    let day = open.date_naive().to_string();
    let (_, calendar) = call(http.get(format!("{base}/v2/calendar?start={day}&end={day}"))).await;
    assert_eq!(
        calendar[0]["date"],
        json!(day),
        "the next open is a session day"
    );
    assert_eq!(
        open.format("%H:%M").to_string(),
        calendar[0]["open"].as_str().unwrap()
    );
    assert!(["-04:00", "-05:00"].contains(&open.offset().to_string().as_str()));

    let (status, unknown) = call(http.get(format!("{base}/v2/watchlists"))).await;
    assert_eq!(status, 404);
    assert_eq!(
        unknown,
        json!({"code": 40410000, "message": "endpoint not found"})
    );
}
