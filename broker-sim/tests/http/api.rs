//! The v1 REST surface: auth, lists and pagination, market orders, cash and positions,
//! validation errors, cancellation, stats, admin access and determinism.

use std::collections::HashSet;

use broker_sim::SimConfig;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn requests_without_a_known_key_are_401_with_envelope_and_rate_headers() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let anon = reqwest::Client::new();
    let r = anon
        .get(format!("{}/v1/account", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("x-ratelimit-limit"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = Api::with_key(&sim, "nope").get("/v1/account").await;
    assert_eq!(wrong.status, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn each_api_key_is_its_own_account_with_the_configured_cash() {
    let sim = broker_sim::spawn(SimConfig {
        cash: "2500.50".parse().unwrap(),
        ..config()
    })
    .await
    .unwrap();
    let a = Api::new(&sim).get("/v1/account").await;
    let b = Api::with_key(&sim, "other-key").get("/v1/account").await;
    assert_eq!(a.status, 200);
    assert_ne!(a.body["id"], b.body["id"]);
    for key in [
        "id",
        "account_number",
        "status",
        "currency",
        "cash",
        "buying_power",
        "equity",
        "updated_at",
    ] {
        assert!(a.body.get(key).is_some(), "account lacks {key}: {}", a.body);
    }
    assert_eq!(a.body["cash"], "2500.50");
    assert_eq!(a.body["buying_power"], "2500.50");
    assert_eq!(a.body["equity"], "2500.50");
    assert_eq!(a.body["status"], "active");
    assert!(chrono::DateTime::parse_from_rfc3339(a.body["updated_at"].as_str().unwrap()).is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn instruments_walk_in_pages_of_100_without_gaps_or_duplicates() {
    let sim = broker_sim::spawn(SimConfig {
        instruments: 2000,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    let mut pages = 0;
    let mut seen = Vec::new();
    let mut path = "/v1/instruments?limit=100".to_string();
    loop {
        let r = api.get(&path).await;
        assert_eq!(r.status, 200);
        pages += 1;
        seen.extend(
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["symbol"].as_str().unwrap().to_owned()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/instruments?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 20);
    assert_eq!(seen.len(), 2000);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 2000);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "sorted by symbol");
    // Offset style lands on the same items.
    let r = api.get("/v1/instruments?limit=10&offset=100").await;
    let by_offset: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_offset,
        seen[100..110]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    // Default page size is 50, and the same cursor gives the same page.
    let first = api.get("/v1/instruments").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 50);
    let c = first.body["next_cursor"].as_str().unwrap();
    let again = api.get(&format!("/v1/instruments?cursor={c}")).await;
    let again2 = api.get(&format!("/v1/instruments?cursor={c}")).await;
    assert_eq!(again.body, again2.body);
    assert_eq!(again.body["data"][0]["symbol"].as_str().unwrap(), seen[50]);
    sim.shutdown().await;
}

#[tokio::test]
async fn instruments_look_like_a_real_universe() {
    let sim = broker_sim::spawn(SimConfig {
        instruments: 2000,
        ..config()
    })
    .await
    .unwrap();
    let all = Api::new(&sim).instruments().await;
    let ticks: HashSet<&str> = all
        .iter()
        .map(|i| i["tick_size"].as_str().unwrap())
        .collect();
    let lots: HashSet<&str> = all
        .iter()
        .map(|i| i["lot_size"].as_str().unwrap())
        .collect();
    assert!(ticks.is_superset(&["0.01", "0.05", "0.0001"].into()));
    assert_eq!(lots, ["1", "10", "100"].into());
    let untradable = all.iter().filter(|i| i["tradable"] == json!(false)).count();
    assert!(
        (40..=160).contains(&untradable),
        "about 5% not tradable, got {untradable}"
    );
    for i in &all {
        let s = i["symbol"].as_str().unwrap();
        assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '.'), "{s}");
        assert_eq!(i["currency"], "USD");
        assert_eq!(
            i["trading_hours"],
            json!({"timezone": "America/New_York", "open": "09:30", "close": "16:00"})
        );
        let price: Decimal = sim.price(s).unwrap().parse().unwrap();
        assert!(
            (price % dec(&i["tick_size"])).is_zero(),
            "{s} price {price} off its grid"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn single_instrument_and_unknown_paths() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let inst = api.pick("1").await;
    let sym = inst["symbol"].as_str().unwrap();
    let r = api.get(&format!("/v1/instruments/{sym}")).await;
    assert_eq!((r.status, &r.body), (200, &inst));
    let r = api.get("/v1/instruments/NOPE123").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = api.get("/v1/orders/not-a-uuid").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = api.get("/v1/nothing-here").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = api
        .send(
            api.http
                .put(format!("{}/v1/account", api.base))
                .bearer_auth(KEY),
        )
        .await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
    assert!(r.headers.contains_key("x-ratelimit-remaining"));
    sim.shutdown().await;
}

#[tokio::test]
async fn list_parameters_are_validated() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    for path in [
        "/v1/instruments?limit=101",
        "/v1/orders?limit=0",
        "/v1/positions?limit=x",
    ] {
        let r = api.get(path).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (400, "invalid_limit", "limit"),
            "{path}"
        );
    }
    for path in [
        "/v1/instruments?cursor=garbage!",
        "/v1/orders?cursor=djE6aTpBQkdO",
    ] {
        let r = api.get(path).await;
        assert_eq!((r.status, r.code()), (400, "invalid_cursor"), "{path}");
    }
    let r = api.get("/v1/orders?status=weird").await;
    assert_eq!((r.status, r.field()), (400, "status"));
    sim.shutdown().await;
}

#[tokio::test]
async fn market_orders_move_cash_and_positions_to_the_cent() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let price: Decimal = sim.price(&sym).unwrap().parse().unwrap();
    let (_, ask) = api.quote(&sym).await;
    assert!(ask > price, "the ask is above the last price");

    let r = api.order(market(&sym, "buy", "30"), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "filled");
    assert_eq!(r.body["filled_quantity"], "30");
    assert_eq!(
        dec(&r.body["average_fill_price"]),
        ask,
        "a buy fills at the ask"
    );
    let cost = (ask * Decimal::from(30)).round_dp(2);

    let acct = api.get("/v1/account").await.body;
    assert_eq!(dec(&acct["cash"]), Decimal::from(1_000_000) - cost);
    let pos = api.get("/v1/positions").await.body;
    let p = &pos["data"][0];
    assert_eq!(
        (
            p["symbol"].as_str().unwrap(),
            p["quantity"].as_str().unwrap()
        ),
        (sym.as_str(), "30")
    );
    assert_eq!(dec(&p["average_price"]), ask);
    assert_eq!(dec(&p["market_value"]), price * Decimal::from(30));
    assert_eq!(
        dec(&acct["equity"]),
        dec(&acct["cash"]) + dec(&p["market_value"])
    );

    let r = api.order(market(&sym, "sell", "10"), None).await;
    assert_eq!(r.body["status"], "filled");
    let pos = api.get("/v1/positions").await.body;
    assert_eq!(pos["data"][0]["quantity"], "20");
    let r = api.order(market(&sym, "sell", "21"), None).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (422, "insufficient_position", "quantity")
    );
    let r = api.order(market(&sym, "sell", "20"), None).await;
    assert_eq!(r.body["status"], "filled");
    assert_eq!(api.get("/v1/positions").await.body["data"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn equity_adds_up_with_starting_positions_while_prices_move() {
    let sim = broker_sim::spawn(SimConfig {
        positions: 7,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    sim.tick(25).await;
    let acct = api.get("/v1/account").await.body;
    let pos = api.get("/v1/positions").await.body;
    let positions = pos["data"].as_array().unwrap();
    assert_eq!(positions.len(), 7);
    let mv: Decimal = positions.iter().map(|p| dec(&p["market_value"])).sum();
    assert_eq!(dec(&acct["equity"]), dec(&acct["cash"]) + mv);
    assert!(dec(&acct["cash"]) < Decimal::from(1_000_000));
    sim.shutdown().await;
}

#[tokio::test]
async fn buying_power_is_checked_on_submit() {
    let sim = broker_sim::spawn(SimConfig {
        cash: "1000.00".parse().unwrap(),
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let r = api.order(limit(&sym, "buy", "1999", "0.50"), None).await;
    assert_eq!(
        (r.status, r.body["status"].as_str().unwrap()),
        (201, "accepted"),
        "{}",
        r.body
    );
    let acct = api.get("/v1/account").await.body;
    assert_eq!(
        acct["buying_power"], "0.50",
        "a resting buy holds back its notional"
    );
    assert_eq!(acct["cash"], "1000.00");
    let r = api.order(limit(&sym, "buy", "1", "0.51"), None).await;
    assert_eq!((r.status, r.code()), (422, "insufficient_buying_power"));
    assert_eq!(sim.stats().await.orders_created, 1);
    sim.shutdown().await;
}

/// Every malformed or refused order gets the envelope with the offending field.
#[tokio::test]
async fn validation_errors_name_their_field() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let all = api.instruments().await;
    let find = |f: &dyn Fn(&Value) -> bool| {
        all.iter().find(|i| f(i)).unwrap()["symbol"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ok =
        find(&|i| i["tradable"] == json!(true) && i["lot_size"] == "1" && i["tick_size"] == "0.01");
    let untradable = find(&|i| i["tradable"] == json!(false));
    let lot10 = find(&|i| i["tradable"] == json!(true) && i["lot_size"] == "10");
    let nickel =
        find(&|i| i["tradable"] == json!(true) && i["tick_size"] == "0.05" && i["lot_size"] == "1");

    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("{not json".into(), 400, "invalid_json", ""),
        ("[1,2]".into(), 400, "invalid_json", ""),
        (json!({"symbol": ok, "side": "buy", "type": "market", "quantity": "1", "qty": "1"}).to_string(), 400, "unknown_field", "qty"),
        (json!({"side": "buy", "type": "market", "quantity": "1"}).to_string(), 400, "missing_field", "symbol"),
        (json!({"symbol": ok, "side": "buy", "type": "market"}).to_string(), 400, "missing_field", "quantity"),
        (json!({"symbol": ok, "side": "buy", "type": "market", "quantity": 1.5}).to_string(), 400, "invalid_decimal", "quantity"),
        (json!({"symbol": ok, "side": "buy", "type": "limit", "quantity": "1", "limit_price": 10.25}).to_string(), 400, "invalid_decimal", "limit_price"),
        (json!({"symbol": ok, "side": "buy", "type": "market", "quantity": "abc"}).to_string(), 400, "invalid_decimal", "quantity"),
        (json!({"symbol": ok, "side": "hold", "type": "market", "quantity": "1"}).to_string(), 400, "invalid_value", "side"),
        (json!({"symbol": ok, "side": "buy", "type": "trailing", "quantity": "1"}).to_string(), 400, "invalid_value", "type"),
        (json!({"symbol": ok, "side": "buy", "type": "market", "quantity": "1", "time_in_force": "forever"}).to_string(), 400, "invalid_value", "time_in_force"),
        (json!({"symbol": 5, "side": "buy", "type": "market", "quantity": "1"}).to_string(), 400, "invalid_type", "symbol"),
        (json!(market("ZZZZZZ", "buy", "1")).to_string(), 422, "unknown_symbol", "symbol"),
        (json!(market(&untradable, "buy", "1")).to_string(), 422, "not_tradable", "symbol"),
        (json!(market(&ok, "buy", "0")).to_string(), 422, "invalid_quantity", "quantity"),
        (json!(market(&ok, "buy", "-5")).to_string(), 422, "invalid_quantity", "quantity"),
        (json!(market(&ok, "buy", "1.5")).to_string(), 422, "invalid_quantity", "quantity"),
        (json!(market(&lot10, "buy", "15")).to_string(), 422, "lot_size", "quantity"),
        (json!(market(&ok, "buy", "99999999999999999999999")).to_string(), 422, "invalid_quantity", "quantity"),
        (json!(limit(&ok, "buy", "1", "99999999999999999999.00")).to_string(), 422, "invalid_price", "limit_price"),
        (json!({"symbol": ok, "side": "buy", "type": "limit", "quantity": "1"}).to_string(), 422, "missing_limit_price", "limit_price"),
        (json!({"symbol": ok, "side": "buy", "type": "market", "quantity": "1", "limit_price": "1.00"}).to_string(), 422, "unexpected_limit_price", "limit_price"),
        (json!({"symbol": ok, "side": "buy", "type": "stop", "quantity": "1"}).to_string(), 422, "missing_stop_price", "stop_price"),
        (json!({"symbol": ok, "side": "buy", "type": "limit", "quantity": "1", "limit_price": "1.00", "stop_price": "1.00"}).to_string(), 422, "unexpected_stop_price", "stop_price"),
        (json!(limit(&ok, "buy", "1", "1.001")).to_string(), 422, "tick_size", "limit_price"),
        (json!(limit(&nickel, "buy", "1", "5.03")).to_string(), 422, "tick_size", "limit_price"),
        (json!(limit(&ok, "buy", "1", "0")).to_string(), 422, "invalid_price", "limit_price"),
        (json!({"symbol": ok, "side": "buy", "type": "stop", "quantity": "1", "stop_price": "1.00", "time_in_force": "ioc"}).to_string(), 422, "invalid_time_in_force", "time_in_force"),
    ];
    for (body, status, code, field) in cases {
        let r = api.post_raw("/v1/orders", &body, None).await;
        assert_eq!(
            (r.status, r.code(), r.field()),
            (status, code, field),
            "body {body}: {}",
            r.body
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let huge = format!("{{\"symbol\": \"{}\"}}", "A".repeat(3 << 20));
    let r = api.post_raw("/v1/orders", &huge, None).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "invalid_request"),
        "oversized bodies get the envelope too"
    );
    // JSON integers are exact, so they are accepted for decimals.
    let r = api
        .post_raw(
            "/v1/orders",
            &json!({"symbol": ok, "side": "buy", "type": "market", "quantity": 2}).to_string(),
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(sim.stats().await.orders_created, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn orders_list_newest_first_with_filters_and_stable_cursors() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 0..7 {
        let body = if i % 2 == 0 {
            market(&sym, "buy", "1")
        } else {
            limit(&sym, "buy", "1", "0.01")
        };
        ids.push(
            api.order(body, None).await.body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let r = api.get("/v1/orders?limit=3").await;
    let page1: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(page1, [&ids[6], &ids[5], &ids[4]]);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    // New orders arriving meanwhile do not shift the next page.
    api.order(market(&sym, "buy", "1"), None).await;
    let r = api
        .get(&format!("/v1/orders?limit=3&cursor={cursor}"))
        .await;
    let page2: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(page2, [&ids[3], &ids[2], &ids[1]]);

    let open = api.get("/v1/orders?status=open").await;
    assert_eq!(open.body["data"].as_array().unwrap().len(), 3);
    assert!(open.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["status"] == "accepted"));
    let closed = api.get("/v1/orders?status=closed&limit=100").await;
    assert_eq!(closed.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(
        api.get("/v1/orders?symbol=ZZZZ").await.body["data"],
        json!([])
    );
    let by_symbol = api
        .get(&format!("/v1/orders?symbol={sym}&status=all"))
        .await;
    assert_eq!(by_symbol.body["data"].as_array().unwrap().len(), 8);

    let one = api.get(&format!("/v1/orders/{}", ids[0])).await;
    assert_eq!(
        (one.status, one.body["id"].as_str().unwrap()),
        (200, ids[0].as_str())
    );
    let other = Api::with_key(&sim, "other-key")
        .get(&format!("/v1/orders/{}", ids[0]))
        .await;
    assert_eq!(other.status, 404, "orders are private to their account");
    sim.shutdown().await;
}

#[tokio::test]
async fn cancel_semantics() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let resting = api.order(limit(&sym, "buy", "5", "0.01"), None).await.body;
    let id = resting["id"].as_str().unwrap();
    let r = api.delete(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (r.status, r.body["status"].as_str().unwrap()),
        (200, "canceled")
    );
    let again = api.delete(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (again.status, again.body["status"].as_str().unwrap()),
        (200, "canceled")
    );
    assert_eq!(
        api.get("/v1/account").await.body["buying_power"],
        "1000000.00"
    );

    let filled = api.order(market(&sym, "buy", "1"), None).await.body;
    let r = api
        .delete(&format!("/v1/orders/{}", filled["id"].as_str().unwrap()))
        .await;
    assert_eq!((r.status, r.code()), (422, "order_not_cancelable"));
    let r = api
        .delete("/v1/orders/6f1c1f7e-0000-4000-8000-000000000000")
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_every_request_by_route_and_status() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let before = sim.stats().await;
    api.get("/v1/account").await;
    api.get("/v1/account").await;
    Api::with_key(&sim, "bad").get("/v1/account").await;
    let o = api.order(market(&sym, "buy", "1"), None).await.body;
    api.get(&format!("/v1/orders/{}", o["id"].as_str().unwrap()))
        .await;
    api.get("/v1/orders/00000000-0000-4000-8000-000000000000")
        .await;
    let s = sim.stats().await;
    assert_eq!(
        s.count_status("GET /v1/account", 200) - before.count_status("GET /v1/account", 200),
        2
    );
    assert_eq!(s.count_status("GET /v1/account", 401), 1);
    assert_eq!(s.count_status("POST /v1/orders", 201), 1);
    assert_eq!(s.count("GET /v1/orders/{id}"), 2);
    assert_eq!(s.count_status("GET /v1/orders/{id}", 404), 1);
    assert_eq!(s.orders_created, 1);
    assert_eq!(s.posts_without_idempotency_key, 1);
    // The HTTP view is the same numbers.
    let http: broker_sim::Stats = serde_json::from_value(
        api.admin(reqwest::Method::GET, "/sim/stats", None)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(http, sim.stats().await);
    sim.shutdown().await;
}

#[tokio::test]
async fn control_plane_needs_its_token_and_is_hidden_without_one() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let r = api.get("/sim/stats").await;
    assert_eq!(r.status, 401, "the API key is not the admin token");
    assert_eq!(
        api.admin(reqwest::Method::GET, "/sim/stats", None)
            .await
            .status,
        200
    );
    sim.shutdown().await;

    let sim = broker_sim::spawn(SimConfig {
        admin_token: None,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    for path in ["/sim/stats", "/sim/faults"] {
        assert_eq!(
            api.admin(reqwest::Method::GET, path, None).await.status,
            404
        );
    }
    assert_eq!(
        api.admin(reqwest::Method::POST, "/sim/reset", Some(json!({})))
            .await
            .status,
        404
    );
    // The in-process helpers still work.
    sim.set_price(api.pick("1").await["symbol"].as_str().unwrap(), "12.34")
        .await;
    sim.reset().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_restores_the_seeded_state() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let initial = api.get("/v1/account").await.body;
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let price = sim.price(&sym).unwrap();
    api.order(market(&sym, "buy", "3"), None).await;
    sim.tick(10).await;
    let r = api.admin(reqwest::Method::POST, "/sim/reset", None).await;
    assert_eq!(r.status, 200);
    let after = api.get("/v1/account").await.body;
    assert_eq!(
        (&after["cash"], &after["id"]),
        (&initial["cash"], &initial["id"])
    );
    assert_eq!(api.get("/v1/orders").await.body["data"], json!([]));
    assert_eq!(sim.price(&sym).unwrap(), price);
    assert_eq!(sim.stats().await.orders_created, 0);
    sim.shutdown().await;
}

/// Two runs with one seed answer the same (timestamps aside: they are wall-clock).
#[tokio::test]
async fn one_seed_gives_identical_responses() {
    async fn run() -> Vec<Value> {
        let sim = broker_sim::spawn(SimConfig {
            positions: 3,
            ..config()
        })
        .await
        .unwrap();
        let api = Api::new(&sim);
        let mut out = vec![api.get("/v1/instruments?limit=100").await.body];
        let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
        sim.tick(50).await;
        out.push(api.order(market(&sym, "buy", "4"), Some("k1")).await.body);
        out.push(api.order(limit(&sym, "buy", "2", "0.01"), None).await.body);
        sim.tick(50).await;
        out.push(api.get("/v1/orders").await.body);
        out.push(api.get("/v1/positions").await.body);
        out.push(api.get("/v1/account").await.body);
        sim.shutdown().await;
        out.into_iter().map(strip_times).collect()
    }
    fn strip_times(v: Value) -> Value {
        match v {
            Value::Object(m) => m
                .into_iter()
                .filter(|(k, _)| !k.ends_with("_at"))
                .map(|(k, v)| (k, strip_times(v)))
                .collect(),
            Value::Array(a) => a.into_iter().map(strip_times).collect(),
            other => other,
        }
    }
    assert_eq!(run().await, run().await);
}
