//! `[[keys]]`: the gateway API keys callers authenticate with, and their scopes
//! (docs/configuration.md, "Gateway API keys"). A list, so TOML only.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;

use super::check::{fail, Check};

/// One gateway API key. Only its SHA-256 is configured, so a leaked config file
/// does not leak the keys (`brokergraph hash-key` computes it).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayKeyConfig {
    /// Names the key in logs; never the key itself.
    pub id: String,
    /// Lowercase hex SHA-256 of the key (64 characters; normalized at load).
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// The broker account this key's callers use (`[[accounts]]` id).
    #[serde(default = "default_account")]
    pub account: String,
}

fn default_account() -> String {
    super::accounts::DEFAULT_ACCOUNT.to_string()
}

/// Abbreviates the hash: enough to tell keys apart in `check-config` and logs, not
/// enough to feed a brute force of a weak key.
impl fmt::Debug for GatewayKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayKeyConfig")
            .field("id", &self.id)
            .field("sha256", &abbreviate_hash(&self.sha256))
            .field("scopes", &self.scopes)
            .field("account", &self.account)
            .finish()
    }
}

pub(crate) fn abbreviate_hash(hash: &str) -> String {
    let prefix: String = hash.chars().take(8).collect();
    format!("{prefix}…")
}

/// What a gateway key may do: `read` for queries, `trade` for order mutations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Trade,
}

impl Scope {
    pub(crate) const ALL: [Scope; 2] = [Scope::Read, Scope::Trade];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Trade => "trade",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalizes each key (id and account trimmed, hash lowercased, scopes in
/// `Scope::ALL` order without repeats), so that comparisons at request time are
/// plain equality; each key must name one of `accounts`.
pub(crate) fn validate(keys: &mut [GatewayKeyConfig], accounts: &[&str]) -> Check {
    let mut ids = HashSet::new();
    let mut hashes = HashSet::new();
    for (i, key) in keys.iter_mut().enumerate() {
        let at = |field: &str| format!("keys[{i}].{field}");
        key.id = key.id.trim().to_string();
        if key.id.is_empty() {
            fail(at("id"), "must not be empty")?;
        }
        if !ids.insert(key.id.clone()) {
            fail(at("id"), format!("duplicate key id {:?}", key.id))?;
        }
        key.sha256 = key.sha256.trim().to_ascii_lowercase();
        if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            fail(
                at("sha256"),
                format!(
                    "must be 64 hex characters (the output of `brokergraph hash-key`), got {} characters",
                    key.sha256.chars().count()
                ),
            )?;
        }
        if !hashes.insert(key.sha256.clone()) {
            fail(at("sha256"), "the same key is configured twice")?;
        }
        key.scopes = Scope::ALL
            .into_iter()
            .filter(|s| key.scopes.contains(s))
            .collect();
        key.account = key.account.trim().to_string();
        if !accounts.contains(&key.account.as_str()) {
            fail(
                at("account"),
                format!(
                    "names the unknown account {:?}; configured accounts: {}",
                    key.account,
                    accounts.join(", ")
                ),
            )?;
        }
        if key.scopes.is_empty() {
            fail(
                at("scopes"),
                "must list at least one of \"read\", \"trade\"",
            )?;
        }
    }
    Ok(())
}
