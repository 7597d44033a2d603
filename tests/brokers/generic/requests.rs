//! What the adapter puts on the wire, and how good answers become domain objects.

use super::support::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brokergraph::broker::generic::{GenericBroker, GenericBrokerConfigError};
use brokergraph::broker::Broker;
use brokergraph::broker::BrokerError;
use brokergraph::domain::*;
use brokergraph::secret::Secret;
use chrono::Utc;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn sends_the_bearer_key_and_reads_the_account_with_as_of() {
    let server = MockServer::start().await;
    let account = json!({"id": "acc-1", "account_number": "PA-1", "status": "restricted",
        "currency": "USD", "cash": "1000.10", "buying_power": "2000.20", "equity": "3000.30",
        "updated_at": "2026-01-02T03:04:05Z"});
    let matcher = Mock::given(method("GET")).and(path("/v1/account"));
    let answer = ResponseTemplate::new(200).set_body_json(account);
    mount(
        &server,
        matcher.and(header("authorization", "Bearer sk-test-123")),
        answer,
    )
    .await;

    let before = Utc::now();
    let account = broker(&server).account().await.unwrap();
    assert_eq!(account.id, "acc-1");
    assert_eq!(account.status, AccountStatus::Restricted);
    assert_eq!((account.cash, account.equity), (d("1000.10"), d("3000.30")));
    assert!(account.as_of >= before && account.as_of <= Utc::now());
}

#[tokio::test]
async fn submit_sends_the_idempotency_key_and_decimals_as_strings() {
    let server = MockServer::start().await;
    let expected_body = json!({"symbol": "ACME", "side": "buy", "type": "stop_limit",
        "quantity": "10", "limit_price": "100.50", "stop_price": "99.00", "time_in_force": "gtc"});
    let matcher = Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .and(header(
            "idempotency-key",
            "6f1c2a2e-2b1e-4c8e-9a57-0d9a3f7f4b11",
        ))
        .and(body_json(expected_body));
    mount(
        &server,
        matcher,
        ResponseTemplate::new(201).set_body_json(order_json("o-1")),
    )
    .await;

    let order = new_order(OrderType::StopLimit, Some("100.50"), Some("99.00"));
    let submitted = broker(&server).submit_order(&order).await.unwrap();
    assert!(!submitted.replayed);
    let o = submitted.order;
    assert_eq!(
        (o.id.as_str(), o.order_type, o.status),
        ("o-1", OrderType::StopLimit, OrderStatus::PartiallyFilled)
    );
    assert_eq!(
        (o.limit_price, o.stop_price, o.average_fill_price),
        (Some(d("100.50")), Some(d("99.00")), None)
    );
    assert_eq!(o.idempotency_key, Some(order.idempotency_key));
}

#[tokio::test]
async fn a_replayed_submit_says_so_and_a_market_order_sends_no_prices() {
    let server = MockServer::start().await;
    let expected_body = json!({"symbol": "ACME", "side": "buy", "type": "market",
        "quantity": "10", "time_in_force": "gtc"});
    let matcher = Mock::given(method("POST")).and(body_json(expected_body));
    let answer = ResponseTemplate::new(200)
        .insert_header("Idempotent-Replayed", "true")
        .set_body_json(order_json("o-1"));
    mount(&server, matcher, answer).await;

    let order = new_order(OrderType::Market, None, None);
    let submitted = broker(&server).submit_order(&order).await.unwrap();
    assert!(submitted.replayed);
}

#[tokio::test]
async fn rate_limit_headers_are_kept_from_successes_and_errors() {
    let server = MockServer::start().await;
    let b = broker(&server);
    assert_eq!(b.rate_limit(), None);

    let ok = with_budget(200, "150", "1900000000").set_body_json(order_json("o-1"));
    Mock::given(path("/v1/orders/o-1"))
        .respond_with(ok)
        .mount(&server)
        .await;
    Mock::given(path("/v1/orders/gone"))
        .respond_with(with_budget(404, "149", "1900000000"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/orders/bare"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;

    let before = SystemTime::now();
    b.order("o-1").await.unwrap();
    let snapshot = b.rate_limit().expect("headers were sent");
    assert_eq!((snapshot.limit, snapshot.remaining), (200, 150));
    assert_eq!(
        snapshot.reset_at,
        UNIX_EPOCH + Duration::from_secs(1_900_000_000)
    );
    assert!(snapshot.observed_at >= before);

    b.order("gone").await.unwrap_err();
    assert_eq!(b.rate_limit().unwrap().remaining, 149);
    // An answer without the headers does not forget what we knew.
    b.order("bare").await.unwrap_err();
    assert_eq!(b.rate_limit().unwrap().remaining, 149);
}

#[tokio::test]
async fn odd_ids_and_symbols_stay_one_path_segment() {
    let server = MockServer::start().await;
    let b = broker(&server);
    let order = ResponseTemplate::new(200).set_body_json(order_json("a/b?c#d e"));
    mount(
        &server,
        Mock::given(method("GET")).and(path("/v1/orders/a%2Fb%3Fc%23d%20e")),
        order.clone(),
    )
    .await;
    mount(
        &server,
        Mock::given(method("DELETE")).and(path("/v1/orders/a%2Fb%3Fc%23d%20e")),
        order,
    )
    .await;
    let instrument = json!({"symbol": "BRK/B", "name": "Berkshire B", "tradable": true,
        "tick_size": "0.01", "lot_size": "1", "currency": "USD",
        "trading_hours": {"timezone": "America/New_York", "open": "09:30", "close": "16:00"}});
    mount(
        &server,
        Mock::given(path("/v1/instruments/BRK%2FB")),
        ResponseTemplate::new(200).set_body_json(instrument),
    )
    .await;

    assert_eq!(b.order("a/b?c#d e").await.unwrap().id, "a/b?c#d e");
    assert_eq!(b.cancel_order("a/b?c#d e").await.unwrap().id, "a/b?c#d e");
    let brk = b.instrument("BRK/B").await.unwrap();
    assert_eq!(
        (brk.tick_size, brk.trading_hours.unwrap().close),
        (d("0.01"), "16:00".to_owned())
    );

    // ".." would be resolved away into the list route: it names no order, and is not sent.
    assert!(matches!(b.order("..").await, Err(BrokerError::NotFound)));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn lists_send_limit_cursor_and_filters_and_return_the_next_cursor() {
    let server = MockServer::start().await;
    let b = broker(&server);
    let list =
        |next: Value| json!({"data": [order_json("o-2"), order_json("o-1")], "next_cursor": next});
    let first = Mock::given(path("/v1/orders"))
        .and(query_param("limit", "2"))
        .and(query_param("status", "open"));
    mount(
        &server,
        first
            .and(query_param("symbol", "A&B #1"))
            .and(query_param_is_missing("cursor")),
        ResponseTemplate::new(200).set_body_json(list(json!("c&2=x"))),
    )
    .await;
    let last = Mock::given(path("/v1/orders"))
        .and(query_param("cursor", "c&2=x"))
        .and(query_param("status", "all"));
    mount(
        &server,
        last.and(query_param_is_missing("symbol")),
        ResponseTemplate::new(200).set_body_json(list(json!(null))),
    )
    .await;
    let positions = json!({"data": [{"symbol": "ACME", "quantity": "5", "average_price": "10.25",
        "market_value": null, "updated_at": "2026-01-02T03:04:05Z"}], "next_cursor": ""});
    mount(
        &server,
        Mock::given(path("/v1/positions")),
        ResponseTemplate::new(200).set_body_json(positions),
    )
    .await;

    let open = OrderQuery {
        status: OrderStatusFilter::Open,
        symbol: Some("A&B #1".into()),
    };
    let p1 = b.orders(&open, &page(2, None)).await.unwrap();
    let ids: Vec<_> = p1.items.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        (ids, p1.next_cursor.as_deref()),
        (vec!["o-2", "o-1"], Some("c&2=x"))
    );
    let p2 = b
        .orders(&OrderQuery::default(), &page(2, Some("c&2=x")))
        .await
        .unwrap();
    assert_eq!(p2.next_cursor, None);

    let positions = b.positions(&page(50, None)).await.unwrap();
    assert_eq!(
        (
            positions.items[0].average_price,
            positions.items[0].market_value
        ),
        (d("10.25"), None)
    );
    assert_eq!(
        positions.next_cursor, None,
        "an empty cursor would restart at page one"
    );
}

#[tokio::test]
async fn the_base_url_keeps_its_prefix_and_bad_config_is_refused() {
    let server = MockServer::start().await;
    let answer = ResponseTemplate::new(200).set_body_json(order_json("o-1"));
    mount(&server, Mock::given(path("/broker/v1/orders/o-1")), answer).await;
    let b = GenericBroker::new(config(
        format!("{}/broker/", server.uri()),
        Duration::from_secs(2),
    ))
    .unwrap();
    b.order("o-1").await.unwrap();
    assert!(!format!("{b:?}").contains(KEY));

    let refused = |url: &str, key: &str| {
        let mut c = config(url.to_owned(), Duration::from_secs(1));
        c.api_key = Secret::new(key);
        GenericBroker::new(c).unwrap_err()
    };
    assert!(matches!(
        refused("http://h:1/v1", KEY),
        GenericBrokerConfigError::BaseUrl { .. }
    ));
    assert!(matches!(
        refused("ftp://h:1", KEY),
        GenericBrokerConfigError::BaseUrl { .. }
    ));
    assert!(matches!(
        refused("http://h:1", ""),
        GenericBrokerConfigError::EmptyApiKey
    ));
    assert!(matches!(
        refused("http://h:1", "a\nb"),
        GenericBrokerConfigError::ApiKeyNotHeaderSafe
    ));
}
