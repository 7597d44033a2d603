//! `GET /openapi.json`: an OpenAPI 3 description of the v1 API, written by hand next to
//! the code it describes; `tests/http/openapi.rs` checks it against real responses so the
//! two cannot drift apart unnoticed.

use axum::Json;
use serde_json::{json, Value};

use crate::pagination::{DEFAULT_LIMIT, MAX_LIMIT};

pub(crate) async fn serve() -> Json<Value> {
    Json(document())
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(name: &str, description: &str) -> Value {
    json!({
        "description": description,
        "headers": {
            "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
            "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
            "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" }
        },
        "content": { "application/json": { "schema": schema_ref(name) } }
    })
}

fn error(description: &str) -> Value {
    body("Error", description)
}

fn list_params(extra: Vec<Value>) -> Value {
    let mut params = vec![
        json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}),
        json!({"name": "cursor", "in": "query", "description": "next_cursor of the previous page (opaque)", "schema": {"type": "string"}}),
        json!({"name": "offset", "in": "query", "description": "alternative to cursor", "schema": {"type": "integer", "minimum": 0}}),
    ];
    params.extend(extra);
    Value::Array(params)
}

fn common_errors(mut responses: Value) -> Value {
    responses["401"] = error("missing or unknown API key");
    responses["429"] = error("rate limited; see Retry-After");
    responses
}

fn list_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": { "type": "array", "items": schema_ref(item) },
            "next_cursor": { "type": "string", "nullable": true }
        }
    })
}

fn object(props: Value) -> Value {
    let required: Vec<&String> = props
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    json!({ "type": "object", "required": required, "properties": props })
}

fn decimal() -> Value {
    json!({ "type": "string", "format": "decimal", "example": "100.50" })
}

fn nullable_decimal() -> Value {
    json!({ "type": "string", "format": "decimal", "nullable": true })
}

fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn enumeration(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// `opg`/`cls`: only in the next opening / the closing auction (the simulated session
/// boundary), the unfilled rest canceled there.
const TIME_IN_FORCE: &[&str] = &["day", "gtc", "ioc", "fok", "opg", "cls"];

pub(crate) fn document() -> Value {
    let id_param = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "broker-sim v1 (generic broker dialect)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Paper broker API. Decimals are JSON strings; timestamps RFC 3339 UTC. Errors: {\"error\": {\"code\", \"message\", \"field\"?}}. Every response carries X-RateLimit-* headers."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/v1/account": { "get": {
                "operationId": "getAccount",
                "responses": common_errors(json!({ "200": body("Account", "the account") }))
            }},
            "/v1/instruments": { "get": {
                "operationId": "listInstruments",
                "description": "Sorted by symbol.",
                "parameters": list_params(vec![]),
                "responses": common_errors(json!({ "200": body("InstrumentList", "a page of instruments"), "400": error("bad limit, cursor or offset") }))
            }},
            "/v1/instruments/{symbol}": { "get": {
                "operationId": "getInstrument",
                "parameters": [{"name": "symbol", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": common_errors(json!({ "200": body("Instrument", "the instrument"), "404": error("unknown symbol") }))
            }},
            "/v1/positions": { "get": {
                "operationId": "listPositions",
                "description": "Sorted by symbol.",
                "parameters": list_params(vec![]),
                "responses": common_errors(json!({ "200": body("PositionList", "a page of positions"), "400": error("bad limit, cursor or offset") }))
            }},
            "/v1/orders": {
                "get": {
                    "operationId": "listOrders",
                    "description": "Newest first.",
                    "parameters": list_params(vec![
                        json!({"name": "status", "in": "query", "schema": {"type": "string", "enum": ["open", "closed", "all"], "default": "all"}}),
                        json!({"name": "symbol", "in": "query", "schema": {"type": "string"}}),
                    ]),
                    "responses": common_errors(json!({ "200": body("OrderList", "a page of orders"), "400": error("bad parameter") }))
                },
                "post": {
                    "operationId": "submitOrder",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255},
                        "description": "Stripe semantics: a replay with the same body answers 200 with the stored body and Idempotent-Replayed: true; kept 24 h."}],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("OrderRequest") } } },
                    "responses": common_errors(json!({
                        "201": body("Order", "order created"),
                        "200": body("Order", "idempotent replay (header Idempotent-Replayed: true)"),
                        "400": error("malformed body: invalid_json, unknown_field, missing_field, invalid_type, invalid_decimal, invalid_value, invalid_idempotency_key"),
                        "409": error("idempotency_key_in_use"),
                        "422": error("unknown_symbol, not_tradable, invalid_quantity, lot_size, tick_size, invalid_price, missing_limit_price, unexpected_limit_price, missing_stop_price, unexpected_stop_price, invalid_time_in_force, insufficient_buying_power, insufficient_position, idempotency_key_reused")
                    }))
                }
            },
            "/v1/orders/{id}": {
                "get": {
                    "operationId": "getOrder",
                    "parameters": id_param,
                    "responses": common_errors(json!({ "200": body("Order", "the order"), "404": error("no such order") }))
                },
                "delete": {
                    "operationId": "cancelOrder",
                    "parameters": id_param,
                    "responses": common_errors(json!({
                        "200": body("Order", "canceled (also when it already was)"),
                        "404": error("no such order"),
                        "422": error("order_not_cancelable: filled, rejected or expired")
                    }))
                },
                "patch": {
                    "operationId": "replaceOrder",
                    "description": "Replaces an open order that has not traded with a new order (new id, `replaces` set); the old one ends canceled with `replaced_by` set. Validated like a submit, with the old order's hold on buying power and shares released for the check. Idempotency as for a submit; the key and the order replaced are one request.",
                    "parameters": [
                        id_param[0].clone(),
                        {"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255},
                            "description": "Stripe semantics, one namespace with submits: a replay answers 200 with the stored body and Idempotent-Replayed: true."}
                    ],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": schema_ref("ReplaceRequest") } } },
                    "responses": common_errors(json!({
                        "200": body("Order", "the new order (a replay also sets Idempotent-Replayed: true)"),
                        "400": error("malformed body: invalid_json, unknown_field, missing_field (nothing to change), invalid_type, invalid_decimal, invalid_value, invalid_idempotency_key"),
                        "404": error("no such order"),
                        "409": error("idempotency_key_in_use"),
                        "422": error("order_not_replaceable (no longer open, or partially filled), the submit validations, idempotency_key_reused")
                    }))
                }
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "headers": {
                "X-RateLimit-Limit": { "schema": { "type": "integer" } },
                "X-RateLimit-Remaining": { "schema": { "type": "integer" } },
                "X-RateLimit-Reset": { "description": "unix seconds", "schema": { "type": "integer" } }
            },
            "schemas": {
                "Account": object(json!({
                    "id": { "type": "string", "format": "uuid" },
                    "account_number": { "type": "string" },
                    "status": enumeration(&["active", "restricted", "closed"]),
                    "currency": { "type": "string" },
                    "cash": decimal(),
                    "buying_power": decimal(),
                    "equity": decimal(),
                    "updated_at": time()
                })),
                "TradingHours": object(json!({
                    "timezone": { "type": "string" },
                    "open": { "type": "string", "example": "09:30" },
                    "close": { "type": "string", "example": "16:00" }
                })),
                "Instrument": object(json!({
                    "symbol": { "type": "string" },
                    "name": { "type": "string" },
                    "tradable": { "type": "boolean" },
                    "tick_size": decimal(),
                    "lot_size": decimal(),
                    "currency": { "type": "string" },
                    "trading_hours": schema_ref("TradingHours")
                })),
                "Position": object(json!({
                    "symbol": { "type": "string" },
                    "quantity": decimal(),
                    "average_price": decimal(),
                    "market_value": decimal(),
                    "updated_at": time()
                })),
                "Order": object(json!({
                    "id": { "type": "string", "format": "uuid" },
                    "idempotency_key": { "type": "string", "nullable": true },
                    "symbol": { "type": "string" },
                    "side": enumeration(&["buy", "sell"]),
                    "type": enumeration(&["market", "limit", "stop", "stop_limit"]),
                    "quantity": decimal(),
                    "filled_quantity": decimal(),
                    "limit_price": nullable_decimal(),
                    "stop_price": nullable_decimal(),
                    "average_fill_price": nullable_decimal(),
                    "time_in_force": enumeration(TIME_IN_FORCE),
                    "status": enumeration(&["pending", "accepted", "partially_filled", "filled", "canceled", "pending_cancel", "rejected", "expired"]),
                    "replaces": { "type": "string", "format": "uuid", "nullable": true, "description": "the order this one replaced" },
                    "replaced_by": { "type": "string", "format": "uuid", "nullable": true, "description": "the order that replaced this one (then canceled)" },
                    "created_at": time(),
                    "updated_at": time()
                })),
                "OrderRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["symbol", "side", "type", "quantity"],
                    "properties": {
                        "symbol": { "type": "string" },
                        "side": enumeration(&["buy", "sell"]),
                        "type": enumeration(&["market", "limit", "stop", "stop_limit"]),
                        "quantity": decimal(),
                        "limit_price": nullable_decimal(),
                        "stop_price": nullable_decimal(),
                        "time_in_force": { "type": "string", "enum": TIME_IN_FORCE, "default": "day" }
                    }
                },
                "ReplaceRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "minProperties": 1,
                    "description": "What changes; everything absent stays as the replaced order had it.",
                    "properties": {
                        "quantity": decimal(),
                        "limit_price": decimal(),
                        "stop_price": decimal(),
                        "time_in_force": enumeration(TIME_IN_FORCE)
                    }
                },
                "InstrumentList": list_schema("Instrument"),
                "PositionList": list_schema("Position"),
                "OrderList": list_schema("Order"),
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string" },
                            "message": { "type": "string" },
                            "field": { "type": "string" }
                        }
                    }}
                }
            }
        }
    })
}
