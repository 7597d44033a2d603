//! Why a configuration cannot be served.

use std::path::PathBuf;

use super::origin::Origin;

/// A configuration that cannot be served. `Display` is one line naming the key and
/// where its value came from, and never contains a secret: it is all an operator
/// sees before the process exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config key `{key}`{}: {message}", origin_suffix(.origin))]
    Invalid {
        key: String,
        origin: Origin,
        message: String,
    },
}

impl ConfigError {
    /// The dotted key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::File { .. } => None,
        }
    }
}

fn origin_suffix(origin: &Origin) -> String {
    match origin {
        Origin::Default => String::new(),
        other => format!(" (from {other})"),
    }
}
