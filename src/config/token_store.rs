//! `[token_store]`: where OAuth tokens live at rest, encrypted (DESIGN §12): a file
//! by default, Redis when replicas share one (`redis.url`).

use std::path::PathBuf;

use serde::Deserialize;

use super::check::{fail, Check};
use crate::secret::Secret;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenStoreSettings {
    /// The encrypted token file, when there is no Redis.
    pub path: PathBuf,
    /// AES-256 key, 64 hex characters (`BROKERGRAPH_STORE_KEY`). Required with OAuth
    /// accounts: a rotated refresh token must survive a restart, and never in clear.
    pub key: Option<Secret>,
}

impl Default for TokenStoreSettings {
    fn default() -> Self {
        TokenStoreSettings {
            path: PathBuf::from("brokergraph-tokens.enc"),
            key: None,
        }
    }
}

impl TokenStoreSettings {
    /// `oauth_accounts`: whether any account authenticates with OAuth.
    pub(crate) fn validate(&self, oauth_accounts: bool) -> Check {
        match &self.key {
            Some(key) => {
                let key = key.expose().trim();
                if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    fail(
                        "token_store.key",
                        "must be 64 hex characters (32 bytes; `openssl rand -hex 32`)",
                    )?;
                }
            }
            None if oauth_accounts => fail(
                "token_store.key",
                "is required with OAuth accounts ([accounts.oauth]): set BROKERGRAPH_STORE_KEY to 64 hex \
                 characters (`openssl rand -hex 32`) so tokens are encrypted at rest",
            )?,
            None => {}
        }
        if self.path.as_os_str().is_empty() {
            fail("token_store.path", "must not be empty")?;
        }
        Ok(())
    }

    /// The key's 32 bytes; `None` when unset or malformed (refused at load).
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.key.as_ref()?.expose().trim(), &mut out).ok()?;
        Some(out)
    }
}
