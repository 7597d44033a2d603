//! /openapi.json describes what the server really does: every documented operation is
//! served, and its success and error bodies match the documented schemas exactly.

use serde_json::{json, Value};

use crate::helpers::*;

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// A small validator for the subset of JSON Schema the document uses.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if value.is_null() {
        assert!(
            schema["nullable"] == json!(true),
            "{at}: null but not nullable"
        );
        return;
    }
    match schema["type"].as_str().unwrap_or("object") {
        "object" => {
            let obj = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object: {value}"));
            let props = schema["properties"].as_object().unwrap();
            for key in obj.keys() {
                assert!(props.contains_key(key), "{at}: undocumented key {key:?}");
            }
            for req in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    obj.contains_key(req.as_str().unwrap()),
                    "{at}: missing required {req}"
                );
            }
            for (key, v) in obj {
                check(doc, &props[key], v, &format!("{at}.{key}"));
            }
        }
        "array" => {
            for (i, item) in value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
                .iter()
                .enumerate()
            {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        "string" => {
            let s = value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string: {value}"));
            if let Some(allowed) = schema["enum"].as_array() {
                assert!(allowed.contains(value), "{at}: {s:?} not in enum");
            }
            if schema["format"] == "decimal" {
                assert!(
                    s.parse::<rust_decimal::Decimal>().is_ok(),
                    "{at}: {s:?} not a decimal"
                );
            }
            if schema["format"] == "date-time" {
                assert!(
                    chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                    "{at}: {s:?} not RFC 3339"
                );
            }
        }
        "boolean" => assert!(value.is_boolean(), "{at}: not a boolean"),
        "integer" => assert!(value.is_i64() || value.is_u64(), "{at}: not an integer"),
        other => panic!("{at}: schema type {other} not handled"),
    }
}

fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: u16) -> &'a Value {
    let resp = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {path} does not document {status}"
    );
    &resp["content"]["application/json"]["schema"]
}

#[tokio::test]
async fn every_documented_operation_is_served_and_matches_its_schema() {
    let sim = broker_sim::spawn(config()).await.unwrap();
    let api = Api::new(&sim);
    let doc = api.get("/openapi.json").await.body;
    assert_eq!(doc["openapi"], "3.0.3");
    let sym = api.pick("1").await["symbol"].as_str().unwrap().to_owned();
    api.order(market(&sym, "buy", "5"), None).await;
    let resting = api.order(limit(&sym, "buy", "1", "0.01"), None).await.body;
    let id = resting["id"].as_str().unwrap();

    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path.replace("{symbol}", &sym).replace("{id}", id);
            let r = match method.as_str() {
                "get" => api.get(&concrete).await,
                "delete" => api.delete(&concrete).await,
                "post" => {
                    api.order(market(&sym, "buy", "1"), Some("openapi-key"))
                        .await
                }
                "patch" => {
                    let fresh = api.order(limit(&sym, "buy", "1", "0.01"), None).await.body;
                    let target = path.replace("{id}", fresh["id"].as_str().unwrap());
                    let change = json!({"limit_price": "0.02"});
                    let first = api.patch(&target, &change, Some("openapi-patch")).await;
                    let replay = api.patch(&target, &change, Some("openapi-patch")).await;
                    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
                    check(
                        &doc,
                        response_schema(&doc, path, method, replay.status),
                        &replay.body,
                        "replace replay",
                    );
                    first
                }
                other => panic!("unexpected method {other}"),
            };
            assert!(
                (200..300).contains(&r.status),
                "{method} {path}: {} {}",
                r.status,
                r.body
            );
            check(
                &doc,
                response_schema(&doc, path, method, r.status),
                &r.body,
                &format!("{method} {path}"),
            );
            if method == "post" {
                let replay = api
                    .order(market(&sym, "buy", "1"), Some("openapi-key"))
                    .await;
                check(
                    &doc,
                    response_schema(&doc, path, method, replay.status),
                    &replay.body,
                    "replay",
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 9);

    // Every v1 route the server answered is documented.
    for route in sim
        .stats()
        .await
        .requests
        .keys()
        .filter(|r| r.contains(" /v1/"))
    {
        let (method, path) = route.split_once(' ').unwrap();
        assert!(
            doc["paths"][path][method.to_lowercase()].is_object(),
            "{route} is served but not documented"
        );
    }

    // Documented errors have the documented shape.
    let errors = [
        (
            api.get("/v1/instruments/NOPE").await,
            "/v1/instruments/{symbol}",
            "get",
        ),
        (api.get("/v1/orders?limit=1000").await, "/v1/orders", "get"),
        (
            api.order(market("NOPE", "buy", "1"), None).await,
            "/v1/orders",
            "post",
        ),
        (
            api.post_raw("/v1/orders", "{", None).await,
            "/v1/orders",
            "post",
        ),
        (
            Api::with_key(&sim, "bad").get("/v1/account").await,
            "/v1/account",
            "get",
        ),
    ];
    for (r, path, method) in errors {
        check(
            &doc,
            response_schema(&doc, path, method, r.status),
            &r.body,
            &format!("{method} {path} {}", r.status),
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_document_is_public_and_not_rate_limited() {
    let sim = broker_sim::spawn(broker_sim::SimConfig {
        rate_limit: 1,
        ..config()
    })
    .await
    .unwrap();
    let anon = reqwest::Client::new();
    for _ in 0..3 {
        let r = anon
            .get(format!("{}/openapi.json", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    sim.shutdown().await;
}
