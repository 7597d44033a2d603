//! A retry after a gateway restart (the idempotency store is gone) is deduplicated by
//! the broker alone: the generic dialect replays the key, Alpaca refuses the
//! `client_order_id` and the adapter reads the order back. Either way one order.

use broker_sim::Dialect;
use brokergraph::config::{BrokerKind, Config};
use brokergraph::secret::Secret;
use brokergraph::server::Gateway;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{spawn_app_in, TestApp, SIM_KEY};

const SUBMIT: &str = r#"
mutation($input: SubmitOrderInput!) {
  submitOrder(input: $input) {
    replayed
    order { brokerOrderId idempotencyKey quantity }
    userErrors { code }
  }
}"#;

/// A second gateway in front of the same broker account, with an empty store.
async fn second_gateway(app: &TestApp) -> String {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.broker.url = Some(app.sim.base_url());
    match app.dialect {
        Dialect::Generic => config.broker.api_key = Some(Secret::new(SIM_KEY)),
        Dialect::Alpaca => {
            config.broker.kind = BrokerKind::Alpaca;
            config.broker.key_id = Some(Secret::new(SIM_KEY));
            config.broker.secret = Some(Secret::new(SIM_KEY));
        }
    }
    let gateway = Gateway::bind(config).await.unwrap();
    let url = format!("http://{}/graphql", gateway.local_addr());
    tokio::spawn(gateway.run(std::future::pending()));
    url
}

async fn post(url: &str, vars: Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&json!({ "query": SUBMIT, "variables": vars }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn a_retry_after_a_restart_is_the_same_order(dialect: Dialect) {
    let app = spawn_app_in(dialect).await;
    let (symbol, _) = app
        .tradable_instruments()
        .await
        .into_iter()
        .find(|(_, lot)| lot == "1")
        .unwrap();
    app.sim.set_price(&symbol, "10.00").await;
    let key = Uuid::new_v4();
    let input = |qty: &str| {
        json!({ "input": { "idempotencyKey": key, "symbol": symbol, "side": "BUY",
            "type": "MARKET", "quantity": qty } })
    };
    let first = app.data(SUBMIT, input("2")).await["submitOrder"].clone();
    assert_eq!(first["replayed"], false, "{first}");
    let restarted = second_gateway(&app).await;
    let again = post(&restarted, input("2")).await;
    let again = &again["data"]["submitOrder"];
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(
        again["order"]["brokerOrderId"],
        first["order"]["brokerOrderId"]
    );
    assert_eq!(again["order"]["idempotencyKey"], json!(key.to_string()));
    let reused = post(&second_gateway(&app).await, input("3")).await;
    assert_eq!(
        reused["data"]["submitOrder"]["userErrors"][0]["code"], "IDEMPOTENCY_KEY_REUSED",
        "{reused}"
    );
    assert_eq!(app.stats().await.orders_created, 1);
}

crate::in_both_dialects!(a_retry_after_a_restart_is_the_same_order);
