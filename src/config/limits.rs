//! `[limits]`: bounds on one GraphQL request, checked before anything runs, so that
//! a gateway on a network refuses abuse in microseconds.

use serde::Deserialize;

use super::check::{positive, Check};

/// The defaults let the dashboard query (account, 20 positions and 20 orders with
/// instruments) through with a wide margin.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Deepest selection nesting (the dashboard needs 6).
    pub max_depth: usize,
    /// async-graphql complexity: one per field selected (the dashboard needs ~60).
    pub max_complexity: usize,
    /// Aliased fields in one document: aliases are how one request fans out.
    pub max_aliases: usize,
    /// Fields at the root of the executed operation.
    pub max_root_fields: usize,
    /// Largest `variables` object, as JSON bytes.
    pub max_variables_bytes: usize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            max_depth: 12,
            max_complexity: 500,
            max_aliases: 30,
            max_root_fields: 20,
            max_variables_bytes: 64 * 1024,
        }
    }
}

impl LimitsSettings {
    /// A zero limit would refuse every request rather than turn the limit off.
    pub(crate) fn validate(&self) -> Check {
        positive(&[
            ("limits.max_depth", self.max_depth),
            ("limits.max_complexity", self.max_complexity),
            ("limits.max_aliases", self.max_aliases),
            ("limits.max_root_fields", self.max_root_fields),
            ("limits.max_variables_bytes", self.max_variables_bytes),
        ])
    }
}
