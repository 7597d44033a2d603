//! Where each key's effective value came from, so that an error can say where to fix
//! it and `check-config` can say what was set and by whom.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where a key's effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Dotted key → origin of every key some layer set.
#[derive(Clone, Debug, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Records that a later layer set `key`, overriding any earlier one.
    pub(crate) fn set(&mut self, key: impl Into<String>, origin: Origin) {
        self.0.insert(key.into(), origin);
    }

    /// The origin of `key` or of its nearest ancestor (`keys[1].sha256` → `keys`):
    /// serde names the innermost key at fault, a layer may have set a whole table.
    pub(crate) fn of(&self, key: &str) -> Origin {
        let mut candidate = key;
        loop {
            if let Some(origin) = self.0.get(candidate) {
                return origin.clone();
            }
            match candidate.rfind(['.', '[']) {
                Some(i) => candidate = &candidate[..i],
                None => return Origin::Default,
            }
        }
    }

    /// Keys not left at their default, with their origin.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.0.iter().map(|(k, o)| (k.as_str(), o))
    }
}
