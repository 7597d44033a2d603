//! Reads the bodies of `POST /v1/orders` and `PATCH /v1/orders/{id}` by hand instead of through serde derive, so that
//! every mistake gets the error envelope with `field` set (serde's messages name no
//! field in a form a client can act on).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::orders::{OrderRequest, OrderType, Replacement, Side, TimeInForce};

const FIELDS: &[&str] = &[
    "symbol",
    "side",
    "type",
    "quantity",
    "limit_price",
    "stop_price",
    "time_in_force",
];

/// Parses raw bytes; also returns the parsed JSON, whose canonical form is the
/// idempotency fingerprint.
pub(crate) fn parse(body: &[u8]) -> Result<(OrderRequest, Value), ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            None,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let obj = value.as_object().ok_or_else(|| {
        ApiError::bad_request("invalid_json", None, "request body must be a JSON object")
    })?;
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "unknown_field",
            Some(unknown),
            format!(
                "unknown field {unknown:?}; expected one of {}",
                FIELDS.join(", ")
            ),
        ));
    }
    let symbol = required_str(obj, "symbol")?.to_owned();
    let side = enumerated(obj, "side", &[("buy", Side::Buy), ("sell", Side::Sell)])?;
    let order_type = enumerated(
        obj,
        "type",
        &[
            ("market", OrderType::Market),
            ("limit", OrderType::Limit),
            ("stop", OrderType::Stop),
            ("stop_limit", OrderType::StopLimit),
        ],
    )?;
    let quantity = decimal(obj, "quantity")?.ok_or_else(|| {
        ApiError::bad_request("missing_field", Some("quantity"), "quantity is required")
    })?;
    let limit_price = decimal(obj, "limit_price")?;
    let stop_price = decimal(obj, "stop_price")?;
    let time_in_force = match obj.get("time_in_force") {
        None | Some(Value::Null) => TimeInForce::Day,
        Some(_) => enumerated(obj, "time_in_force", TIME_IN_FORCE)?,
    };
    let request = OrderRequest {
        symbol,
        side,
        order_type,
        quantity,
        limit_price,
        stop_price,
        time_in_force,
    };
    Ok((request, value))
}

/// What `PATCH /v1/orders/{id}` may change.
const REPLACEMENT_FIELDS: &[&str] = &["quantity", "limit_price", "stop_price", "time_in_force"];

const TIME_IN_FORCE: &[(&str, TimeInForce)] = &[
    ("day", TimeInForce::Day),
    ("gtc", TimeInForce::Gtc),
    ("ioc", TimeInForce::Ioc),
    ("fok", TimeInForce::Fok),
    ("opg", TimeInForce::Opg),
    ("cls", TimeInForce::Cls),
];

/// Parses the body of `PATCH /v1/orders/{id}`: at least one of the fields a replace
/// may change, each as in an order body. Also returns the parsed JSON, which the
/// idempotency fingerprint is taken of.
pub(crate) fn parse_replacement(body: &[u8]) -> Result<(Replacement, Value), ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            None,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    let obj = value.as_object().ok_or_else(|| {
        ApiError::bad_request("invalid_json", None, "request body must be a JSON object")
    })?;
    if let Some(unknown) = obj
        .keys()
        .find(|k| !REPLACEMENT_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "unknown_field",
            Some(unknown),
            format!(
                "unknown field {unknown:?}; a replace may change {}",
                REPLACEMENT_FIELDS.join(", ")
            ),
        ));
    }
    let replacement = Replacement {
        quantity: decimal(obj, "quantity")?,
        limit_price: decimal(obj, "limit_price")?,
        stop_price: decimal(obj, "stop_price")?,
        time_in_force: match obj.get("time_in_force") {
            None | Some(Value::Null) => None,
            Some(_) => Some(enumerated(obj, "time_in_force", TIME_IN_FORCE)?),
        },
    };
    let Replacement {
        quantity,
        limit_price,
        stop_price,
        time_in_force,
    } = &replacement;
    if quantity.is_none()
        && limit_price.is_none()
        && stop_price.is_none()
        && time_in_force.is_none()
    {
        return Err(ApiError::bad_request(
            "missing_field",
            None,
            format!(
                "a replace changes at least one of {}",
                REPLACEMENT_FIELDS.join(", ")
            ),
        ));
    }
    Ok((replacement, value))
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(ApiError::bad_request(
            "missing_field",
            Some(field),
            format!("{field} is required"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(
            "invalid_type",
            Some(field),
            format!("{field} must be a string"),
        )),
    }
}

fn enumerated<T: Copy>(
    obj: &Map<String, Value>,
    field: &str,
    allowed: &[(&str, T)],
) -> Result<T, ApiError> {
    let raw = required_str(obj, field)?;
    allowed
        .iter()
        .find(|(name, _)| *name == raw)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            ApiError::bad_request(
                "invalid_value",
                Some(field),
                format!("{field} must be one of {}, got {raw:?}", names.join(", ")),
            )
        })
}

/// Decimals travel as strings; JSON integers are exact and accepted too, but a JSON
/// float is refused because binary floats cannot carry cents faithfully.
fn decimal(obj: &Map<String, Value>, field: &str) -> Result<Option<Decimal>, ApiError> {
    let text = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(Value::Number(_)) => {
            return Err(ApiError::bad_request(
                "invalid_decimal",
                Some(field),
                format!("{field} must be a decimal string such as \"100.50\", not a JSON float"),
            ))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                Some(field),
                format!("{field} must be a decimal string such as \"100.50\""),
            ))
        }
    };
    let well_formed = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && text.chars().filter(|&c| c == '.').count() <= 1;
    match Decimal::from_str(&text) {
        Ok(d) if well_formed => Ok(Some(d)),
        _ => Err(ApiError::bad_request(
            "invalid_decimal",
            Some(field),
            format!("{field} is not a decimal number: {text:?}"),
        )),
    }
}
