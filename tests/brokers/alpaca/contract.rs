//! The Alpaca contract: broker-sim's Alpaca dialect answers as Alpaca's published
//! OpenAPI description says (a vendored excerpt, `contract/trading-api.json`; its source
//! and licence are in `contract/README.md`), and the gateway's Alpaca adapter reads the
//! examples that description gives and sends replace bodies it accepts. The sim and the
//! adapter are written apart from each other; checking both against Alpaca's own
//! document is what keeps them from sharing one misunderstanding.
//!
//! How the document is read, where it is loose or dated:
//! - A property may be `null` when it is `nullable`, or when the schema's own examples
//!   show it `null` (`trail_percent` is typed a string, and every example has `null`).
//! - Properties the document does not list are allowed only if they are in [`NEWER`]:
//!   fields Alpaca added after this excerpt, as alpaca-py models them.
//! - `required` is enforced as written (the sim must send `asset_marginable`, which
//!   one of the document's own position examples lacks).

use std::collections::HashMap;

use brokergraph::broker::Broker;
use brokergraph::domain::*;
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;

fn document() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/brokers/alpaca/contract/trading-api.json"
    ))
    .expect("the vendored document");
    serde_json::from_str(&text).expect("JSON")
}

/// Fields newer than the excerpt, per schema (from alpaca-py's `Order`, `Position`,
/// `Asset`, `TradeAccount`, `AccountConfiguration`, `CancelOrderResponse` and
/// `Calendar` models), which an Alpaca answer may carry.
const NEWER: &[(&str, &[&str])] = &[
    ("Order", &["expires_at", "position_intent", "ratio_qty"]),
    (
        "Position",
        &["qty_available", "swap_rate", "avg_entry_swap_rate", "usd"],
    ),
    (
        "Assets",
        &[
            "min_order_size",
            "min_trade_increment",
            "price_increment",
            "maintenance_margin_requirement",
            "attributes",
        ],
    ),
    (
        "Account",
        &[
            "crypto_status",
            "non_marginable_buying_power",
            "accrued_fees",
        ],
    ),
    (
        "AccountConfigurations",
        &["ptp_no_exception_entry", "max_options_trading_level"],
    ),
    ("CanceledOrderResponse", &["body"]),
    ("Calendar", &["settlement_date"]),
];

struct Checker {
    doc: Value,
    newer: HashMap<&'static str, &'static [&'static str]>,
}

impl Checker {
    fn new() -> Checker {
        Checker {
            doc: document(),
            newer: NEWER.iter().copied().collect(),
        }
    }

    fn schema(&self, name: &str) -> &Value {
        let schema = &self.doc["components"]["schemas"][name];
        assert!(schema.is_object(), "no schema {name} in the document");
        schema
    }

    /// The schema of a documented response, by path, method and status.
    fn response(&self, path: &str, method: &str, status: u16) -> &Value {
        let responses = &self.doc["paths"][path][method]["responses"];
        let response = &responses[status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path}: {status} is not a documented answer (documented: {:?})",
            responses.as_object().map(|r| r.keys().collect::<Vec<_>>())
        );
        &response["content"]["application/json"]["schema"]
    }

    /// Checks `value` against `schema`; `at` names the place for failures.
    fn check(&self, schema: &Value, value: &Value, at: &str) {
        let (name, schema) = match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                (Some(name), self.schema(name))
            }
            None => (None, schema),
        };
        let kind = schema["type"]
            .as_str()
            .unwrap_or(if schema["properties"].is_object() {
                "object"
            } else {
                "any"
            });
        match kind {
            "object" => self.object(name, schema, value, at),
            "array" => {
                let items = value
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: not an array: {value}"));
                for (i, item) in items.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"));
                }
            }
            "string" => {
                let s = value
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}: not a string: {value}"));
                if let Some(allowed) = schema["enum"].as_array() {
                    assert!(
                        allowed.contains(value),
                        "{at}: {s:?} is not one of {allowed:?}"
                    );
                }
                match schema["format"].as_str() {
                    Some("date-time") => assert!(
                        chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                        "{at}: {s:?} is not a date-time"
                    ),
                    Some("uuid") => {
                        assert!(Uuid::parse_str(s).is_ok(), "{at}: {s:?} is not a uuid")
                    }
                    _ => {}
                }
                if let Some(min) = schema["minLength"].as_u64() {
                    assert!(s.len() as u64 >= min, "{at}: shorter than {min}");
                }
                if let Some(max) = schema["maxLength"].as_u64() {
                    assert!(s.len() as u64 <= max, "{at}: longer than {max}");
                }
            }
            "boolean" => assert!(value.is_boolean(), "{at}: not a boolean: {value}"),
            "integer" => assert!(
                value.is_i64() || value.is_u64(),
                "{at}: not an integer: {value}"
            ),
            "number" => assert!(value.is_number(), "{at}: not a number: {value}"),
            "any" => {}
            other => panic!("{at}: schema type {other} not handled"),
        }
    }

    fn object(&self, name: Option<&str>, schema: &Value, value: &Value, at: &str) {
        let obj = value
            .as_object()
            .unwrap_or_else(|| panic!("{at}: not an object: {value}"));
        let props = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap();
            assert!(obj.contains_key(required), "{at}: {required} is required");
        }
        let newer = name.and_then(|n| self.newer.get(n)).copied().unwrap_or(&[]);
        let examples = schema["x-examples"].as_object();
        for (key, v) in obj {
            let Some(prop) = props.get(key) else {
                assert!(
                    newer.contains(&key.as_str()),
                    "{at}: {key:?} is neither in Alpaca's {} nor a newer Alpaca field",
                    name.unwrap_or("schema")
                );
                continue;
            };
            if v.is_null() {
                let shown_null = examples
                    .is_some_and(|e| e.values().any(|ex| ex.get(key).is_some_and(Value::is_null)));
                assert!(
                    prop["nullable"] == json!(true) || shown_null,
                    "{at}.{key}: null, but Alpaca's document never has it null"
                );
                continue;
            }
            self.check(prop, v, &format!("{at}.{key}"));
        }
    }

    /// Checks an answer of the sim against the documented response.
    fn answer(&self, path: &str, method: &str, (status, body): &(u16, Value)) {
        let schema = self.response(path, method, *status);
        self.check(schema, body, &format!("{method} {path}"));
    }
}

const SIM_KEY: &str = "contract-key";

async fn sim() -> broker_sim::SimHandle {
    broker_sim::spawn(broker_sim::SimConfig {
        api_keys: vec![SIM_KEY.into()],
        tick_ms: 0,
        instruments: 100,
        rate_limit: 10_000,
        shorting: true,
        dialect: broker_sim::Dialect::Alpaca,
        ..Default::default()
    })
    .await
    .unwrap()
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("APCA-API-KEY-ID", SIM_KEY)
            .header("APCA-API-SECRET-KEY", SIM_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
}

#[tokio::test]
async fn broker_sims_alpaca_answers_match_alpacas_published_schemas() {
    let c = Checker::new();
    let sim = sim().await;
    let api = Client {
        http: reqwest::Client::new(),
        base: sim.base_url(),
    };
    use reqwest::Method;

    c.answer("/v2/account", "get", &api.get("/v2/account").await);
    c.answer(
        "/v2/account/configurations",
        "get",
        &api.get("/v2/account/configurations").await,
    );
    c.answer("/v2/clock", "get", &api.get("/v2/clock").await);
    c.answer("/v2/calendar", "get", &api.get("/v2/calendar").await);

    // Assets have a schema in the excerpt but no path: checked against the schema.
    let (status, assets) = api.get("/v2/assets").await;
    assert_eq!(status, 200);
    let asset_schema = json!({ "$ref": "#/components/schemas/Assets" });
    c.check(
        &json!({ "type": "array", "items": asset_schema }),
        &assets,
        "GET /v2/assets",
    );
    let asset = assets
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["tradable"] == json!(true) && a["min_trade_increment"] == json!("1"))
        .unwrap();
    let symbol = asset["symbol"].as_str().unwrap().to_string();
    sim.set_price(&symbol, "10.00").await;
    let (_, by_id) = api
        .get(&format!("/v2/assets/{}", asset["id"].as_str().unwrap()))
        .await;
    c.check(&asset_schema, &by_id, "GET /v2/assets/{id}");

    // Orders: a submit, its state after the next tick, a replace and what it replaced.
    let market = json!({"symbol": symbol, "qty": "6", "side": "buy", "type": "market",
        "time_in_force": "day", "client_order_id": "contract-1"});
    let placed = api.send(Method::POST, "/v2/orders", Some(market)).await;
    c.answer("/v2/orders", "post", &placed);
    sim.tick(1).await;
    let one = format!("/v2/orders/{}", placed.1["id"].as_str().unwrap());
    let filled = api.get(&one).await;
    assert_eq!(filled.1["status"], "filled");
    c.answer("/v2/orders/{order_id}", "get", &filled);
    let resting = json!({"symbol": symbol, "qty": "1", "side": "buy", "type": "limit",
        "limit_price": "5.00", "time_in_force": "gtc"});
    let resting = api.send(Method::POST, "/v2/orders", Some(resting)).await;
    let patch = json!({"qty": "2", "limit_price": "5.10", "client_order_id": "contract-2"});
    c.check(
        &json!({ "$ref": "#/components/schemas/PatchOrderRequest" }),
        &patch,
        "the PATCH body sent",
    );
    let old = format!("/v2/orders/{}", resting.1["id"].as_str().unwrap());
    let replaced = api.send(Method::PATCH, &old, Some(patch)).await;
    c.answer("/v2/orders/{order_id}", "patch", &replaced);
    c.answer("/v2/orders/{order_id}", "get", &api.get(&old).await);
    c.answer("/v2/orders", "get", &api.get("/v2/orders?status=all").await);

    // Positions, long and short, and a close.
    let short = json!({"symbol": symbol, "qty": "9", "side": "sell", "type": "market",
        "time_in_force": "day"});
    api.send(Method::POST, "/v2/orders", Some(short)).await;
    sim.tick(1).await;
    let positions = api.get("/v2/positions").await;
    assert_eq!(positions.1[0]["side"], "short", "{}", positions.1);
    c.answer("/v2/positions", "get", &positions);
    let held = format!("/v2/positions/{symbol}");
    c.answer(
        "/v2/positions/{symbol_or_asset_id}",
        "get",
        &api.get(&held).await,
    );
    let closed = api
        .send(Method::DELETE, &format!("{held}?qty=1"), None)
        .await;
    c.answer("/v2/positions/{symbol_or_asset_id}", "delete", &closed);

    // Cancels: one, then every open order.
    let (status, _) = api.send(Method::DELETE, &one, None).await;
    assert_eq!(status, 422, "a filled order is not cancelable");
    c.response("/v2/orders/{order_id}", "delete", status);
    let (status, _) = api
        .send(
            Method::DELETE,
            &format!("/v2/orders/{}", replaced.1["id"].as_str().unwrap()),
            None,
        )
        .await;
    c.response("/v2/orders/{order_id}", "delete", status);
    api.send(
        Method::POST,
        "/v2/orders",
        Some(
            json!({"symbol": symbol, "qty": "1", "side": "buy", "type": "limit",
            "limit_price": "5.00", "time_in_force": "gtc"}),
        ),
    )
    .await;
    let all = api.send(Method::DELETE, "/v2/orders", None).await;
    assert_eq!(all.1.as_array().map(Vec::len), Some(2), "{}", all.1);
    c.answer("/v2/orders", "delete", &all);
}

/// What the adapter reads, it reads as Alpaca writes it: each example of the document
/// is served as the answer it illustrates.
#[tokio::test]
async fn the_adapter_reads_alpacas_own_examples() {
    let doc = document();
    let example = |name: &str, which: &str| -> Value {
        doc["components"]["schemas"][name]["x-examples"][which].clone()
    };
    let server = MockServer::start().await;
    let order = example("Order", "example-1");
    let order_id = order["id"].as_str().unwrap().to_string();
    for (route, body) in [
        ("/v2/account".to_string(), example("Account", "example-1")),
        (format!("/v2/orders/{order_id}"), order.clone()),
        (
            "/v2/positions".to_string(),
            json!([
                example("Position", "example-1"),
                example("Position", "example-2")
            ]),
        ),
        (
            "/v2/assets/AAPL".to_string(),
            example("Assets", "example-1"),
        ),
        (
            "/v2/calendar".to_string(),
            json!([example("Calendar", "example-1")]),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    let alpaca = broker(&server);
    let account = alpaca.account().await.unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(account.cash, d("-23140.2"));
    let read = alpaca.order(&order_id).await.unwrap();
    // A notional order: no qty yet, so its quantity is what filled (none).
    assert_eq!(
        (read.quantity, read.status),
        (d("0"), OrderStatus::Accepted)
    );
    assert_eq!(read.broker_status.as_deref(), Some("accepted"));
    let positions = alpaca.positions(&page(10, None)).await.unwrap();
    assert_eq!(positions.items.len(), 2);
    assert_eq!(positions.items[0].quantity, d("5"));
    let aapl = alpaca.instrument("AAPL").await.unwrap();
    assert!(aapl.tradable);
    assert_eq!(aapl.lot_size, d("0.000000001"), "fractionable");
}

/// The body the adapter sends to replace an order is one Alpaca's document accepts.
#[tokio::test]
async fn the_adapters_replace_body_is_a_patch_order_request() {
    let c = Checker::new();
    let server = MockServer::start().await;
    let mut answer = order_json(
        "9f1b2c3d-0000-4000-8000-000000000001",
        "pending_new",
        "2026-03-02T15:30:00Z",
    );
    answer["replaces"] = json!(ORDER_ID);
    answer["qty"] = json!("12");
    answer["limit_price"] = json!("151.00");
    answer["time_in_force"] = json!("gtc");
    Mock::given(method("PATCH"))
        .and(path(format!("/v2/orders/{ORDER_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&server)
        .await;
    let replacement = OrderReplacement {
        idempotency_key: Uuid::parse_str(KEY).unwrap(),
        quantity: Some(d("12")),
        limit_price: Some(d("151.00")),
        stop_price: None,
        time_in_force: Some(TimeInForce::Gtc),
    };
    broker(&server)
        .replace_order(ORDER_ID, &replacement)
        .await
        .unwrap();
    let sent = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "PATCH")
        .expect("the PATCH");
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    let schema = json!({ "$ref": "#/components/schemas/PatchOrderRequest" });
    c.check(&schema, &body, "the adapter's PATCH body");
    assert_eq!(body["client_order_id"], CLIENT_ID);
}

/// The checker itself: each way an answer can disagree with the document fails it.
#[test]
fn the_checker_refuses_what_the_document_does_not_allow() {
    let c = Checker::new();
    let schema = json!({ "$ref": "#/components/schemas/Order" });
    let good = c.schema("Order")["x-examples"]["example-1"].clone();
    c.check(&schema, &good, "the document's own example");
    let broken: [(&str, Value); 5] = [
        ("an unknown field", json!({"qty_avaliable": "1"})),
        (
            "a word outside the enum",
            json!({"status": "almost_filled"}),
        ),
        ("a null the document never shows", json!({"side": null})),
        ("a number where a string is", json!({"filled_qty": 0})),
        ("a bad timestamp", json!({"created_at": "yesterday"})),
    ];
    for (what, change) in broken {
        let mut order = good.clone();
        for (k, v) in change.as_object().unwrap() {
            order[k] = v.clone();
        }
        let refused = std::panic::catch_unwind(|| c.check(&schema, &order, what));
        assert!(refused.is_err(), "{what} passed");
    }
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("time_in_force");
    assert!(std::panic::catch_unwind(|| c.check(&schema, &missing, "missing")).is_err());
}
