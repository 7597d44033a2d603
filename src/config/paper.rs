//! `[paper]`: the embedded paper broker, used when `broker.url` is unset so that the
//! gateway runs (and its tests pass) without a real broker.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use super::check::{fail, positive, Check};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperSettings {
    pub seed: u64,
    /// A decimal string: money is never a float.
    #[serde(deserialize_with = "decimal_string")]
    pub cash: String,
    pub instruments: usize,
    pub positions: usize,
}

impl Default for PaperSettings {
    fn default() -> Self {
        PaperSettings {
            seed: 42,
            cash: "1000000.00".to_string(),
            instruments: 2_000,
            positions: 25,
        }
    }
}

impl PaperSettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[("paper.instruments", self.instruments)])?;
        // Each starting position is in a distinct instrument.
        if self.positions > self.instruments {
            fail(
                "paper.positions",
                format!(
                    "must not exceed paper.instruments ({}), got {}",
                    self.instruments, self.positions
                ),
            )?;
        }
        Ok(())
    }
}

/// Money as a decimal string; a TOML integer is accepted too, a float is refused.
fn decimal_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Whole(i64),
    }
    let text = match Raw::deserialize(d)
        .map_err(|_| serde::de::Error::custom("must be a decimal string such as \"1000000.00\""))?
    {
        Raw::Text(t) => t,
        Raw::Whole(n) => n.to_string(),
    };
    match Decimal::from_str(text.trim()) {
        Ok(value) if value > Decimal::ZERO => Ok(text.trim().to_string()),
        _ => Err(serde::de::Error::custom(format!(
            "must be a positive decimal such as \"1000000.00\", got {text:?}"
        ))),
    }
}
