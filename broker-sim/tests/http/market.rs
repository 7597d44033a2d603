//! The simulated market: resting orders, stops, partial fills, IOC/FOK/DAY, the clock.

use std::time::Duration;

use broker_sim::SimConfig;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

/// A cent-tick, lot-1 tradable symbol priced between `lo` and `hi`.
async fn symbol_between(
    api: &Api,
    sim: &broker_sim::SimHandle,
    lo: i64,
    hi: i64,
) -> (String, Decimal) {
    for i in api.instruments().await {
        let sym = i["symbol"].as_str().unwrap();
        let price: Decimal = sim.price(sym).unwrap().parse().unwrap();
        if i["tradable"] == json!(true)
            && i["lot_size"] == "1"
            && i["tick_size"] == "0.01"
            && price > Decimal::from(lo)
            && price < Decimal::from(hi)
        {
            return (sym.to_owned(), price);
        }
    }
    panic!("no symbol priced between {lo} and {hi}");
}

async fn order(api: &Api, id: &Value) -> Value {
    api.get(&format!("/v1/orders/{}", id.as_str().unwrap()))
        .await
        .body
}

#[tokio::test]
async fn a_resting_limit_buy_fills_when_the_price_crosses_and_the_books_add_up() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let (sym, price) = symbol_between(&api, &sim, 20, 500).await;
    let limit_price = (price * Decimal::new(9, 1)).round_dp(2);
    let r = api
        .order(limit(&sym, "buy", "100", &limit_price.to_string()), None)
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str().unwrap()),
        (201, "accepted")
    );
    assert_eq!(r.body["filled_quantity"], "0");
    assert_eq!(r.body["average_fill_price"], Value::Null);
    let reserved = limit_price * Decimal::from(100);
    let acct = api.get("/v1/account").await.body;
    assert_eq!(
        dec(&acct["buying_power"]),
        Decimal::from(1_000_000) - reserved
    );
    assert_eq!(acct["cash"], "1000000.00");

    // Not crossed yet: still resting.
    sim.set_price(&sym, &(limit_price + Decimal::new(1, 2)).to_string())
        .await;
    assert_eq!(order(&api, &r.body["id"]).await["status"], "accepted");
    // Crossed: fills at the ask, which is better than the limit.
    let last = limit_price - Decimal::new(5, 2);
    let resp = api
        .admin(
            reqwest::Method::POST,
            "/sim/prices",
            Some(json!({"symbol": sym, "price": last.to_string()})),
        )
        .await;
    assert_eq!(resp.status, 200);
    let (_, fill) = api.quote(&sym).await;
    assert!(fill > last && fill < limit_price, "{fill}");
    let o = order(&api, &r.body["id"]).await;
    assert_eq!(
        (
            o["status"].as_str().unwrap(),
            o["filled_quantity"].as_str().unwrap()
        ),
        ("filled", "100")
    );
    assert_eq!(dec(&o["average_fill_price"]), fill);

    let cost = fill * Decimal::from(100);
    let acct = api.get("/v1/account").await.body;
    assert_eq!(dec(&acct["cash"]), Decimal::from(1_000_000) - cost);
    assert_eq!(dec(&acct["buying_power"]), dec(&acct["cash"]));
    let pos = &api.get("/v1/positions").await.body["data"][0];
    assert_eq!(
        (
            pos["quantity"].as_str().unwrap(),
            dec(&pos["average_price"])
        ),
        ("100", fill)
    );
    let value = last * Decimal::from(100);
    assert_eq!(dec(&pos["market_value"]), value);
    assert_eq!(
        dec(&acct["equity"]),
        Decimal::from(1_000_000) - cost + value
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn limit_sells_and_stops_trigger_on_the_right_side() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let (sym, price) = symbol_between(&api, &sim, 20, 500).await;
    api.order(market(&sym, "buy", "30"), None).await;
    let up = (price + Decimal::from(5)).to_string();
    let down = (price - Decimal::from(5)).to_string();
    let take_profit = api.order(limit(&sym, "sell", "10", &up), None).await.body;
    let stop_loss = api
        .order(json!({"symbol": sym, "side": "sell", "type": "stop", "quantity": "10", "stop_price": down, "time_in_force": "gtc"}), None)
        .await
        .body;
    let stop_limit = api
        .order(json!({"symbol": sym, "side": "sell", "type": "stop_limit", "quantity": "10", "stop_price": down, "limit_price": (price - Decimal::from(1)).to_string()}), None)
        .await
        .body;
    // Selling more than is left after the resting sells is refused.
    let r = api.order(market(&sym, "sell", "1"), None).await;
    assert_eq!((r.status, r.code()), (422, "insufficient_position"));

    sim.set_price(&sym, &(price + Decimal::from(6)).to_string())
        .await;
    assert_eq!(order(&api, &take_profit["id"]).await["status"], "filled");
    assert_eq!(order(&api, &stop_loss["id"]).await["status"], "accepted");

    sim.set_price(&sym, &(price - Decimal::from(6)).to_string())
        .await;
    let (bid, _) = api.quote(&sym).await;
    assert!(bid < price - Decimal::from(6));
    let sl = order(&api, &stop_loss["id"]).await;
    assert_eq!(
        (
            sl["status"].as_str().unwrap(),
            dec(&sl["average_fill_price"])
        ),
        ("filled", bid),
        "a triggered stop sells at the bid"
    );
    // The stop-limit triggered but its limit is above the market: it waits...
    assert_eq!(order(&api, &stop_limit["id"]).await["status"], "accepted");
    // ...and fills once the price comes back to the limit, although the stop is no longer touched.
    sim.set_price(&sym, &price.to_string()).await;
    assert_eq!(order(&api, &stop_limit["id"]).await["status"], "filled");
    assert_eq!(api.get("/v1/positions").await.body["data"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_big_order_fills_in_parts_over_ticks() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let (sym, price) = symbol_between(&api, &sim, 80, 150).await;
    let per_tick = (Decimal::from(250_000) / price).floor();
    let qty = per_tick * Decimal::from(2) + Decimal::from(7);
    let r = api.order(market(&sym, "buy", &qty.to_string()), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "partially_filled");
    assert_eq!(dec(&r.body["filled_quantity"]), per_tick);
    let open = api.get("/v1/orders?status=open").await.body;
    assert_eq!(open["data"][0]["id"], r.body["id"]);
    sim.tick(1).await;
    assert_eq!(
        order(&api, &r.body["id"]).await["status"],
        "partially_filled"
    );
    sim.tick(1).await;
    let o = order(&api, &r.body["id"]).await;
    assert_eq!(
        (o["status"].as_str().unwrap(), dec(&o["filled_quantity"])),
        ("filled", qty)
    );
    let acct = api.get("/v1/account").await.body;
    let pos = &api.get("/v1/positions").await.body["data"][0];
    assert_eq!(dec(&pos["quantity"]), qty);
    assert_eq!(
        dec(&acct["equity"]),
        dec(&acct["cash"]) + dec(&pos["market_value"])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn ioc_and_fok_never_rest() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let (sym, price) = symbol_between(&api, &sim, 80, 150).await;
    let per_tick = (Decimal::from(250_000) / price).floor();
    let big = (per_tick + Decimal::from(10)).to_string();
    let tif = |tif: &str, qty: &str| json!({"symbol": sym, "side": "buy", "type": "market", "quantity": qty, "time_in_force": tif});

    let ioc = api.order(tif("ioc", &big), None).await.body;
    assert_eq!(
        (
            ioc["status"].as_str().unwrap(),
            dec(&ioc["filled_quantity"])
        ),
        ("canceled", per_tick)
    );
    let fok = api.order(tif("fok", &big), None).await.body;
    assert_eq!(
        (
            fok["status"].as_str().unwrap(),
            fok["filled_quantity"].as_str().unwrap()
        ),
        ("canceled", "0")
    );
    let fok = api.order(tif("fok", "10"), None).await.body;
    assert_eq!(fok["status"], "filled");
    let below = (price - Decimal::from(10)).to_string();
    let ioc_limit = api
        .order(json!({"symbol": sym, "side": "buy", "type": "limit", "quantity": "5", "limit_price": below, "time_in_force": "ioc"}), None)
        .await
        .body;
    assert_eq!(
        (
            ioc_limit["status"].as_str().unwrap(),
            ioc_limit["filled_quantity"].as_str().unwrap()
        ),
        ("canceled", "0")
    );
    assert_eq!(
        api.get("/v1/orders?status=open").await.body["data"],
        json!([])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn day_orders_expire_at_the_simulated_close_and_gtc_orders_stay() {
    let sim = broker_sim::spawn(SimConfig {
        session_ticks: 20,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    let day = api
        .order(json!({"symbol": sym, "side": "buy", "type": "limit", "quantity": "1", "limit_price": "0.01"}), None)
        .await
        .body;
    assert_eq!(day["time_in_force"], "day", "day is the default");
    let gtc = api.order(limit(&sym, "buy", "1", "0.01"), None).await.body;
    sim.tick(19).await;
    assert_eq!(order(&api, &day["id"]).await["status"], "accepted");
    sim.tick(1).await;
    assert_eq!(order(&api, &day["id"]).await["status"], "expired");
    assert_eq!(order(&api, &gtc["id"]).await["status"], "accepted");
    let r = api
        .delete(&format!("/v1/orders/{}", day["id"].as_str().unwrap()))
        .await;
    assert_eq!((r.status, r.code()), (422, "order_not_cancelable"));
    // The close can also be forced.
    let day2 = api
        .order(json!({"symbol": sym, "side": "buy", "type": "limit", "quantity": "1", "limit_price": "0.01"}), None)
        .await
        .body;
    assert_eq!(
        api.admin(reqwest::Method::POST, "/sim/close", None)
            .await
            .status,
        200
    );
    assert_eq!(order(&api, &day2["id"]).await["status"], "expired");
    assert_eq!(
        api.get("/v1/account").await.body["buying_power"],
        "999999.99"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_clock_moves_prices_on_the_tick_grid() {
    let sim = broker_sim::spawn(SimConfig {
        tick_ms: 5,
        ..config()
    })
    .await
    .unwrap();
    let api = Api::new(&sim);
    let all = api.instruments().await;
    let before: Vec<String> = all
        .iter()
        .map(|i| sim.price(i["symbol"].as_str().unwrap()).unwrap())
        .collect();
    while sim.stats().await.ticks < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after: Vec<String> = all
        .iter()
        .map(|i| sim.price(i["symbol"].as_str().unwrap()).unwrap())
        .collect();
    assert_ne!(before, after);
    for (i, p) in all.iter().zip(&after) {
        let p: Decimal = p.parse().unwrap();
        assert!(p > Decimal::ZERO && (p % dec(&i["tick_size"])).is_zero());
    }
    sim.shutdown().await;
}
