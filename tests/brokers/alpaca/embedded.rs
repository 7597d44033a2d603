//! `brokergraph serve --broker alpaca` without a URL: the embedded paper broker in
//! the Alpaca dialect, over the Alpaca adapter, end to end.

use brokergraph::config::{BrokerKind, Config};
use brokergraph::server::Gateway;
use serde_json::{json, Value};

#[tokio::test]
async fn alpaca_without_a_url_trades_on_the_embedded_paper_broker() {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.broker.kind = BrokerKind::Alpaca;
    config.paper.instruments = 50;
    let gateway = Gateway::bind(config).await.expect("binds");
    let url = format!("http://{}/graphql", gateway.local_addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.run(async {
        let _ = rx.await;
    }));
    let query = "{ account { status cash } instruments(first: 3) { nodes { symbol tickSize
        tradingHours { timezone open close } } } }";
    let body: Value = reqwest::Client::new()
        .post(&url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["account"]["status"], "ACTIVE");
    let first = &body["data"]["instruments"]["nodes"][0];
    assert_eq!(first["tradingHours"]["timezone"], "America/New_York");
    let _ = tx.send(());
}
