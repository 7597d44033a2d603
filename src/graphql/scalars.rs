//! The `Decimal` scalar. async-graphql ships one, but it accepts JSON floats and
//! silently rounds them; for money a float is a bug on the client, so we refuse it
//! and say what to send instead. A string is refused too when it has more digits
//! than a decimal holds, rather than rounded.

use std::str::FromStr;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// An exact decimal, serialized as a string (`"100.50"`). Accepts a string or a
/// JSON integer; a float is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Decimal(pub rust_decimal::Decimal);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => match rust_decimal::Decimal::from_str(s.trim()) {
                Ok(d) if exact(s.trim(), d) => Ok(Decimal(d)),
                Ok(_) => Err(InputValueError::custom(format!(
                    "`{s}` is not a decimal number this gateway can hold exactly: at most 28 digits after the point"
                ))),
                Err(_) => Err(InputValueError::custom(format!(
                    "`{s}` is not a decimal number; send a string such as \"100.50\""
                ))),
            },
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Decimal(i.into()))
                } else if let Some(u) = n.as_u64() {
                    Ok(Decimal(u.into()))
                } else {
                    Err(InputValueError::custom(format!(
                        "{n} is a float, which cannot hold cents exactly; send the amount as a string such as \"{n}\""
                    )))
                }
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// Whether `parsed` is the very number `text` spells. `rust_decimal` rounds what
/// does not fit its 28 fractional digits (`"0.000…0001"` with 29 becomes 0), and
/// rounding always drops fractional digits, so comparing their count finds it.
fn exact(text: &str, parsed: rust_decimal::Decimal) -> bool {
    let fraction = text.split_once('.').map_or("", |(_, f)| f);
    let digits: String = fraction.chars().filter(char::is_ascii_digit).collect();
    parsed.normalize().scale() as usize == digits.trim_end_matches('0').len()
}

impl From<rust_decimal::Decimal> for Decimal {
    fn from(value: rust_decimal::Decimal) -> Self {
        Decimal(value)
    }
}
