//! `[graphql]`: paging of the Relay connections.

use serde::Deserialize;

use super::check::{fail, Check};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlSettings {
    pub default_page_size: u32,
    pub max_page_size: u32,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        GraphqlSettings {
            default_page_size: 50,
            max_page_size: 500,
        }
    }
}

impl GraphqlSettings {
    pub(crate) fn validate(&self) -> Check {
        const MAX: u32 = 500;
        for (key, value) in [
            ("graphql.default_page_size", self.default_page_size),
            ("graphql.max_page_size", self.max_page_size),
        ] {
            if !(1..=MAX).contains(&value) {
                fail(key, format!("must be between 1 and {MAX}, got {value}"))?;
            }
        }
        if self.default_page_size > self.max_page_size {
            fail(
                "graphql.default_page_size",
                format!(
                    "must not exceed graphql.max_page_size ({}), got {}",
                    self.max_page_size, self.default_page_size
                ),
            )?;
        }
        Ok(())
    }
}
