//! Every way a call can fail, as the layers above see it.

use super::support::*;
use std::time::Duration;

use brokergraph::broker::generic::GenericBroker;
use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use chrono::Utc;
use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn each_error_status_maps_to_its_broker_error() {
    for status in [401, 403] {
        let err = error_for(Call::Account, ResponseTemplate::new(status)).await;
        assert!(
            matches!(err, BrokerError::Unauthorized),
            "{status}: {err:?}"
        );
    }
    let err = error_for(Call::Order, envelope(404, "not_found", None)).await;
    assert!(matches!(err, BrokerError::NotFound), "{err:?}");
    let err = error_for(Call::Cancel, ResponseTemplate::new(404)).await;
    assert!(matches!(err, BrokerError::NotFound), "{err:?}");
    for status in [500, 502, 503] {
        let err = error_for(Call::Order, ResponseTemplate::new(status)).await;
        assert!(
            matches!(err, BrokerError::Unavailable { status: Some(s), .. } if s == status),
            "{err:?}"
        );
    }

    let cases = [
        (
            Call::Submit,
            envelope(422, "invalid_quantity", Some("quantity")),
            rejected(422, "invalid_quantity", Some("quantity")),
        ),
        (
            Call::Submit,
            envelope(422, "insufficient_buying_power", None),
            rejected(422, "insufficient_buying_power", None),
        ),
        (
            Call::Submit,
            envelope(409, "idempotency_key_in_use", None),
            rejected(409, "idempotency_key_in_use", None),
        ),
        (
            Call::Cancel,
            envelope(422, "order_not_cancelable", None),
            rejected(422, "order_not_cancelable", None),
        ),
        (
            Call::Instruments,
            envelope(400, "invalid_cursor", Some("cursor")),
            rejected(400, "invalid_cursor", Some("cursor")),
        ),
        (
            Call::Submit,
            ResponseTemplate::new(400).set_body_string("<html>Bad Request</html>"),
            rejected(400, "unknown", None),
        ),
        // A 404 on a route that always exists means a wrong base URL, not "no account".
        (
            Call::Account,
            ResponseTemplate::new(404),
            rejected(404, "unknown", None),
        ),
    ];
    for (call, answer, expected) in cases {
        match error_for(call, answer).await {
            BrokerError::Rejected {
                status,
                code,
                field,
                message,
            } => {
                assert_eq!((status, code.clone(), field), expected);
                assert!(!message.is_empty(), "{code}");
            }
            other => panic!("expected Rejected {expected:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_429_carries_retry_after_in_seconds_or_as_an_http_date() {
    let retry_after = |err| match err {
        BrokerError::RateLimited { retry_after } => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    };
    let seconds = ResponseTemplate::new(429).insert_header("Retry-After", "17");
    assert_eq!(
        retry_after(error_for(Call::Account, seconds).await),
        Some(Duration::from_secs(17))
    );

    let at = (Utc::now() + chrono::Duration::seconds(30)).format("%a, %d %b %Y %H:%M:%S GMT");
    let date = ResponseTemplate::new(429).insert_header("Retry-After", at.to_string().as_str());
    let waited = retry_after(error_for(Call::Account, date).await).expect("a date is a delay");
    assert!(
        waited > Duration::from_secs(27) && waited <= Duration::from_secs(30),
        "{waited:?}"
    );

    let past =
        ResponseTemplate::new(429).insert_header("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        retry_after(error_for(Call::Account, past).await),
        Some(Duration::ZERO)
    );
    assert_eq!(
        retry_after(error_for(Call::Account, ResponseTemplate::new(429)).await),
        None
    );
}

#[tokio::test]
async fn a_slow_broker_is_a_timeout_not_a_hang() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200)
        .set_body_json(order_json("o-1"))
        .set_delay(Duration::from_millis(200));
    Mock::given(any()).respond_with(slow).mount(&server).await;
    let b = GenericBroker::new(config(server.uri(), Duration::from_millis(50))).unwrap();

    // The mock answers after 200 ms; a client without the 50 ms timeout would get the order.
    let err = b.order("o-1").await.unwrap_err();
    assert!(matches!(err, BrokerError::Timeout), "{err:?}");
}

/// Collects log output so a test can read what an operator would see.
#[tokio::test]
async fn an_unreadable_answer_is_a_decode_error_with_the_body_logged_redacted() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let garbage = format!("<html>upstream echoed {KEY}</html>");
    let err = error_for(
        Call::Order,
        ResponseTemplate::new(200).set_body_string(garbage),
    )
    .await;
    assert!(matches!(err, BrokerError::Decode(_)), "{err:?}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("upstream echoed [redacted]"), "{logged}");
    assert!(!logged.contains(KEY), "{logged}");

    // Floats lose cents: a number where the dialect promises a decimal string is refused.
    let mut float = order_json("o-1");
    float["quantity"] = json!(10.1);
    let err = error_for(Call::Order, ResponseTemplate::new(200).set_body_json(float)).await;
    assert!(matches!(err, BrokerError::Decode(_)), "{err:?}");

    // The error may travel towards a client, so it never quotes the body.
    let mut echoed = order_json("o-1");
    echoed["side"] = json!(KEY);
    let err = error_for(
        Call::Order,
        ResponseTemplate::new(200).set_body_json(echoed),
    )
    .await;
    assert!(
        matches!(&err, BrokerError::Decode(m) if !m.contains(KEY)),
        "{err:?}"
    );
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logged.contains(KEY), "{logged}");
}

#[tokio::test]
async fn refused_and_reset_connections_are_unavailable_without_a_status() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let b = GenericBroker::new(config(closed, Duration::from_secs(2))).unwrap();
    assert!(matches!(
        b.account().await,
        Err(BrokerError::Unavailable { status: None, .. })
    ));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resets = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket); // read nothing, answer nothing
        }
    });
    let b = GenericBroker::new(config(resets, Duration::from_secs(2))).unwrap();
    let err = b
        .submit_order(&new_order(OrderType::Market, None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::Unavailable { status: None, .. }),
        "{err:?}"
    );
    assert!(err.outcome_unknown());
}
