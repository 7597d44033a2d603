//! `[orders]`: pre-trade checks beyond the instrument's own rules.

use serde::Deserialize;

use super::check::{fail, Check};

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderCheckSettings {
    /// The price collar in whole percent: a buy limit more than this above the ask,
    /// or a sell limit more than this below the bid, is refused with
    /// `PRICE_OUTSIDE_COLLAR`. 0: off.
    pub price_collar_pct: u32,
}

impl OrderCheckSettings {
    pub(crate) fn validate(&self) -> Check {
        if self.price_collar_pct > 100 {
            fail("orders.price_collar_pct", "is a percentage: 0 (off) to 100")?;
        }
        Ok(())
    }

    /// The collar as a fraction of the quote, when on.
    pub(crate) fn collar(&self) -> Option<rust_decimal::Decimal> {
        (self.price_collar_pct > 0)
            .then(|| rust_decimal::Decimal::new(self.price_collar_pct.into(), 2))
    }
}
