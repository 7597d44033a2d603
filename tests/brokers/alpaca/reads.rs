//! Account, assets, positions and rate limits over a scripted Alpaca.

use std::time::Duration;

use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;

#[tokio::test]
async fn the_account_reads_string_decimals_and_upper_case_status() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "1d9eed04-be39-4e01-9b84-a48ac5bbafcf", "admin_configurations": {},
            "user_configurations": null, "account_number": "PALPACA_123", "status": "ACTIVE",
            "crypto_status": "ACTIVE", "currency": "USD", "buying_power": "245432.61",
            "cash": "122086.5", "equity": "123346.11", "pattern_day_trader": true,
            "trading_blocked": false, "account_blocked": false, "multiplier": "2",
            "created_at": "2023-01-01T18:20:20.272275Z"
        })))
        .mount(&server)
        .await;
    let a = broker(&server).account().await.unwrap();
    assert_eq!(a.status, AccountStatus::Active);
    assert_eq!(a.cash, d("122086.5"));
    assert_eq!(a.account_number, "PALPACA_123");
}

#[tokio::test]
async fn instruments_derive_tick_lot_and_hours() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/assets/AAPL"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415", "class": "us_equity",
            "exchange": "NASDAQ", "symbol": "AAPL", "name": "Apple Inc. Common Stock",
            "status": "active", "tradable": true, "marginable": true, "shortable": true,
            "easy_to_borrow": true, "fractionable": true
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/assets/BTC%2FUSD"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "class": "crypto", "symbol": "BTC/USD", "name": "Bitcoin", "status": "active",
            "tradable": true, "fractionable": true, "min_order_size": "0.0001",
            "min_trade_increment": "0.000000001", "price_increment": "1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/calendar"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"date": "2000-01-03", "open": "09:30", "close": "16:00",
             "session_open": "0400", "session_close": "2000"},
            {"date": "2999-12-31", "open": "09:30", "close": "13:00"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let broker = broker(&server);
    let aapl = broker.instrument("AAPL").await.unwrap();
    assert_eq!(aapl.tick_size, d("0.01"));
    assert_eq!(aapl.lot_size, d("0.000000001"));
    let hours = aapl.trading_hours.unwrap();
    assert_eq!(
        (hours.open.as_str(), hours.close.as_str()),
        ("09:30", "13:00")
    );
    assert_eq!(hours.timezone, "America/New_York");
    let btc = broker.instrument("BTC/USD").await.unwrap();
    assert_eq!(btc.tick_size, d("1"));
    assert_eq!(btc.trading_hours.unwrap().timezone, "UTC");
}

#[tokio::test]
async fn an_unknown_asset_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/assets/NOPE"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"code": 40410000, "message": "asset not found for NOPE"})),
        )
        .mount(&server)
        .await;
    let err = broker(&server).instrument("NOPE").await.unwrap_err();
    assert!(matches!(err, BrokerError::NotFound), "{err:?}");
}

#[tokio::test]
async fn positions_are_paged_by_symbol_over_one_array() {
    let server = MockServer::start().await;
    let row = |s: &str| {
        json!({"asset_id": "x", "symbol": s, "exchange": "NASDAQ",
        "asset_class": "us_equity", "avg_entry_price": "100.0", "qty": "5", "side": "long",
        "market_value": null, "cost_basis": "500.0", "current_price": null})
    };
    let short = |s: &str| {
        let mut r = row(s);
        r["side"] = json!("short");
        r
    };
    Mock::given(method("GET"))
        .and(path("/v2/positions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            row("MSFT"),
            row("AAPL"),
            short("TSLA")
        ])))
        .mount(&server)
        .await;
    let broker = broker(&server);
    let first = broker.positions(&page(2, None)).await.unwrap();
    let symbols: Vec<_> = first.items.iter().map(|p| p.symbol.as_str()).collect();
    assert_eq!(symbols, ["AAPL", "MSFT"]);
    assert_eq!(first.items[0].market_value, None);
    let rest = broker
        .positions(&page(2, first.next_cursor.as_deref()))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    assert_eq!(rest.items[0].quantity, d("-5"), "TSLA is short");
}

#[tokio::test]
async fn a_429_is_rate_limited_and_the_budget_is_read_from_the_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .insert_header("X-RateLimit-Limit", "200")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "1900000000")
                .set_body_json(json!({"message": "too many requests."})),
        )
        .mount(&server)
        .await;
    let broker = broker(&server);
    match broker.account().await {
        Err(BrokerError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(broker.rate_limit().unwrap().remaining, 0);
}

#[tokio::test]
async fn bad_credentials_are_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "forbidden"})))
        .mount(&server)
        .await;
    let err = broker(&server).account().await.unwrap_err();
    assert!(matches!(err, BrokerError::Unauthorized), "{err:?}");
}
