//! `[audit]`: the mutation audit log, what an operator reads to learn who traded
//! what. Always a tracing event on target `audit`; also a file when set.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Appends one JSON object per mutation attempt, flushed before the response.
    pub file: Option<PathBuf>,
}
