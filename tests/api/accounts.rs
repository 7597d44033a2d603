//! Two broker accounts behind one gateway (`[[accounts]]`): broker-sim with two API
//! keys is two accounts, the gateway key `a` uses `default`, `b` uses `desk-b`. No
//! path answers one account's data to the other's caller. The checks take the two
//! callers' credentials, so JWT sessions (`jwt.rs`) run the same ones.

use brokergraph::config::{AccountConfig, BrokerKind, Config, Scope};
use brokergraph::secret::Secret;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::common::{
    cheap_symbol_in, sim_config, spawn_app_with, AppOptions, TestApp, INSTRUMENTS_FOR_PICKING,
    SIM_KEY,
};

pub(crate) const SIM_KEY_B: &str = "test-broker-key-b";
const KEY_A: &str = "gateway-key-a";
const KEY_B: &str = "gateway-key-b";

const DASHBOARD: &str = "{ account { id accountNumber cash } \
    positions(first: 50) { nodes { symbol quantity } } \
    orders(first: 50) { nodes { id brokerOrderId } } }";

const SUBMIT: &str = "mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { \
    replayed order { id brokerOrderId } userErrors { code message } } }";

async fn two_accounts() -> TestApp {
    spawn_app_with(AppOptions {
        keys: vec![
            ("a", KEY_A, vec![Scope::Read, Scope::Trade]),
            ("b", KEY_B, vec![Scope::Read, Scope::Trade]),
        ],
        use_key: Some(KEY_A),
        tweak: |c| {
            add_desk_b(c);
            c.keys[1].account = "desk-b".into();
        },
        ..two_account_options()
    })
    .await
}

/// broker-sim with a second account's key, for [`add_desk_b`].
pub(crate) fn two_account_options() -> AppOptions {
    let mut sim = sim_config();
    sim.api_keys = vec![SIM_KEY.to_string(), SIM_KEY_B.to_string()];
    AppOptions {
        sim,
        ..AppOptions::default()
    }
}

/// The account `desk-b` on the sim's second key, beside `default`.
pub(crate) fn add_desk_b(c: &mut Config) {
    c.accounts.push(AccountConfig {
        id: "desk-b".into(),
        broker: BrokerKind::Generic,
        url: c.broker.url.clone(),
        api_key: Some(Secret::new(SIM_KEY_B)),
        key_id: None,
        secret: None,
        oauth: None,
    });
}

fn as_key(app: &mut TestApp, key: &str) {
    app.key = Some(key.to_string());
}

async fn submit(app: &TestApp, key: Uuid, symbol: &str) -> Value {
    let vars = json!({ "input": { "idempotencyKey": key, "symbol": symbol,
        "side": "BUY", "type": "MARKET", "quantity": "1" } });
    app.data(SUBMIT, vars).await["submitOrder"].clone()
}

#[tokio::test]
async fn a_key_of_one_account_never_sees_the_other_accounts_data() {
    one_account_never_sees_the_others_data(&mut two_accounts().await, KEY_A, KEY_B).await;
}

/// `a` and `b` are the credentials of callers on `default` and on `desk-b`.
pub(crate) async fn one_account_never_sees_the_others_data(app: &mut TestApp, a: &str, b: &str) {
    let app = &mut *app;
    as_key(app, b);
    let symbol = cheap_symbol_in(
        &app.data(INSTRUMENTS_FOR_PICKING, json!({})).await,
        &app.sim,
    )
    .await;
    let key = Uuid::new_v4();
    let b_order = submit(app, key, &symbol).await;
    assert_eq!(b_order["userErrors"], json!([]), "{b_order}");
    let b_order_id = b_order["order"]["id"].as_str().unwrap().to_string();
    let b_broker_id = b_order["order"]["brokerOrderId"]
        .as_str()
        .unwrap()
        .to_string();
    // B's answer is stored in the response cache (asked twice, the same bytes).
    let b = app.data(DASHBOARD, json!({})).await;
    assert_eq!(app.data(DASHBOARD, json!({})).await, b);
    let b_account = b["account"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["orders"]["nodes"][0]["id"], b_order_id.as_str(), "{b}");
    let page = app
        .data("{ orders(first: 1) { pageInfo { endCursor } } }", json!({}))
        .await;
    let b_cursor = page["orders"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();

    as_key(app, a);
    // The same dashboard query text: A's account, none of B's orders.
    let a = app.data(DASHBOARD, json!({})).await;
    assert_ne!(a["account"]["id"], b["account"]["id"], "{a}");
    assert_ne!(a["account"]["accountNumber"], b["account"]["accountNumber"]);
    assert_eq!(a["orders"]["nodes"], json!([]), "{a}");
    assert_eq!(a["positions"]["nodes"], json!([]), "{a}");
    // B's order by global id: null, as for an order that does not exist.
    let by_id = app
        .data(
            "query($id: ID!) { node(id: $id) { id } order(id: $id) { id } }",
            json!({ "id": b_order_id }),
        )
        .await;
    assert_eq!(by_id, json!({ "node": null, "order": null }));
    // B's cursor is not A's.
    let code = app
        .error_code(
            "query($after: String) { orders(first: 1, after: $after) { nodes { id } } }",
            json!({ "after": b_cursor }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    // B's idempotency key is a new key in A's account: no replay of B's order.
    let a_order = submit(app, key, &symbol).await;
    assert_eq!(a_order["replayed"], json!(false), "{a_order}");
    assert_ne!(a_order["order"]["brokerOrderId"], b_broker_id.as_str());
    let orders = app.broker_get("/v1/orders?limit=100").await;
    assert!(
        !orders.to_string().contains(&b_broker_id),
        "B's order is not A's at the broker: {orders}"
    );
    assert!(!app
        .graphql(DASHBOARD, json!({}))
        .await
        .to_string()
        .contains(&b_account));
}

#[tokio::test]
async fn persisted_queries_of_one_account_never_answer_with_the_others_data() {
    persisted_queries_never_cross_accounts(&mut two_accounts().await, KEY_A, KEY_B).await;
}

pub(crate) async fn persisted_queries_never_cross_accounts(app: &mut TestApp, a: &str, b: &str) {
    const QUERY: &str = "query Who { account { id accountNumber } }";
    let hash = hex::encode(Sha256::digest(QUERY.as_bytes()));
    let by_hash =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    let mut register = by_hash.clone();
    register["query"] = json!(QUERY);
    let post = |app: &TestApp, key: &str, body: &Value| {
        app.http
            .post(app.url("/graphql"))
            .bearer_auth(key)
            .json(body)
            .send()
    };
    let b_answer: Value = post(app, b, &register).await.unwrap().json().await.unwrap();
    let b_account = b_answer["data"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_again: Value = post(app, b, &by_hash).await.unwrap().json().await.unwrap();
    assert_eq!(
        b_again["data"]["account"]["id"],
        b_account.as_str(),
        "{b_again}"
    );
    // Another account's registration is not A's: A must send the text itself.
    let a_answer: Value = post(app, a, &by_hash).await.unwrap().json().await.unwrap();
    assert_eq!(
        a_answer["errors"][0]["message"], "PersistedQueryNotFound",
        "{a_answer}"
    );
    let a_answer: Value = post(app, a, &register).await.unwrap().json().await.unwrap();
    assert!(a_answer["data"]["account"]["id"].is_string(), "{a_answer}");
    assert_ne!(a_answer["data"]["account"]["id"], b_account.as_str());
    as_key(app, a);
    assert!(!app
        .graphql(QUERY, json!({}))
        .await
        .to_string()
        .contains(&b_account));
}

#[tokio::test]
async fn order_updates_carry_only_the_subscribers_account() {
    order_updates_never_cross_accounts(&mut two_accounts().await, KEY_A, KEY_B).await;
}

pub(crate) async fn order_updates_never_cross_accounts(app: &mut TestApp, a: &str, b: &str) {
    const UPDATES: &str = "subscription { orderUpdates { event order { id } } }";
    let app = &mut *app;
    as_key(app, a);
    let symbol = cheap_symbol_in(
        &app.data(INSTRUMENTS_FOR_PICKING, json!({})).await,
        &app.sim,
    )
    .await;
    let mut a_updates = app.ws().await;
    a_updates.subscribe(UPDATES, json!({})).await;
    as_key(app, b);
    let mut b_updates = app.ws().await;
    b_updates.subscribe(UPDATES, json!({})).await;
    wait_for_upstreams(app, 2).await;

    let b_order = submit(app, Uuid::new_v4(), &symbol).await;
    let b_id = b_order["order"]["id"].clone();
    // B's subscriber hears of it, so the event has been published.
    loop {
        let update = b_updates.next_data().await["orderUpdates"].clone();
        if update["order"]["id"] == b_id {
            break;
        }
    }
    as_key(app, a);
    let a_order = submit(app, Uuid::new_v4(), &symbol).await;
    // A's first event is about A's order: B's never reached A's subscription.
    let first = a_updates.next_data().await["orderUpdates"].clone();
    assert_eq!(first["order"]["id"], a_order["order"]["id"], "{first}");
}

/// Both accounts' upstream streams are open at broker-sim.
pub(crate) async fn wait_for_upstreams(app: &TestApp, n: u64) {
    let deadline = tokio::time::Instant::now() + crate::common::ws::PATIENCE;
    while app.sim.stats().await.streams.open != n {
        assert!(tokio::time::Instant::now() < deadline, "{n} upstreams open");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
