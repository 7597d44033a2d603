//! `[persisted_queries]`: Apollo automatic persisted queries, and the allow-list
//! mode for production.

use std::path::PathBuf;

use serde::Deserialize;

use super::check::{positive, Check};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistedQuerySettings {
    /// Accept `extensions.persistedQuery` (hash first, query on a miss).
    pub enabled: bool,
    /// Most registered queries kept (least recently used are dropped).
    pub max_entries: usize,
    /// A JSON array of the only queries that may run (allow-list mode); unset: any.
    pub allow_list: Option<PathBuf>,
}

impl Default for PersistedQuerySettings {
    fn default() -> Self {
        PersistedQuerySettings {
            enabled: true,
            max_entries: 1_000,
            allow_list: None,
        }
    }
}

impl PersistedQuerySettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[("persisted_queries.max_entries", self.max_entries)])
    }
}
