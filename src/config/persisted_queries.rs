//! `[persisted_queries]`: Apollo automatic persisted queries, and the allow-list
//! mode for production.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::check::{positive, Check};
use super::duration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistedQuerySettings {
    /// Accept `extensions.persistedQuery` (hash first, query on a miss).
    pub enabled: bool,
    /// Most registered queries kept (least recently used are dropped).
    pub max_entries: usize,
    /// A JSON array of the only queries that may run (allow-list mode); unset: any.
    pub allow_list: Option<PathBuf>,
    /// With replicas on Redis: how long a registration is kept there, so every
    /// replica serves it. Bounds Redis memory with `shared_max_bytes`.
    #[serde(rename = "shared_ttl_secs", deserialize_with = "duration::secs")]
    pub shared_ttl: Duration,
    /// Longest query text registered in Redis; a longer one is remembered by the
    /// replica that saw it only.
    pub shared_max_bytes: usize,
}

impl Default for PersistedQuerySettings {
    fn default() -> Self {
        PersistedQuerySettings {
            enabled: true,
            max_entries: 1_000,
            allow_list: None,
            shared_ttl: Duration::from_secs(86_400),
            shared_max_bytes: 16 * 1024,
        }
    }
}

impl PersistedQuerySettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[
            ("persisted_queries.max_entries", self.max_entries),
            ("persisted_queries.shared_max_bytes", self.shared_max_bytes),
        ])?;
        positive(&[("persisted_queries.shared_ttl_secs", self.shared_ttl)])
    }
}
