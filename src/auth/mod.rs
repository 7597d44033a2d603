//! Who is calling: `Authorization: Bearer <credential>`, a gateway API key checked
//! against the SHA-256 hashes in the config, or a JWT session (`jwt`, with the
//! IdP's keys from `jwks`), giving a `Principal` with an account and scopes.
//!
//! Only hashes of gateway keys are stored, so the config is not a list of usable
//! keys; the presented key is hashed and compared in constant time against every
//! configured hash; and no credential is ever logged or echoed, whatever happens.

mod jwks;
pub(crate) mod jwt;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use jwt::JwtVerifier;

use crate::config::{GatewayKeyConfig, Scope, DEFAULT_ACCOUNT};

/// The lowercase hex SHA-256 of a gateway key, as `[[keys]] sha256` expects.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Who is calling and what they may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The configured key id, or `anonymous` when no keys are configured.
    pub key_id: String,
    pub scopes: Vec<Scope>,
    /// The broker account the caller uses: every read, order and cursor is its.
    pub account: String,
    /// A JWT session's `sub`: the signed-in user, named in the audit log.
    pub subject: Option<String>,
    /// A JWT session's end (Unix seconds): its `exp` plus the leeway, the last
    /// moment the token is honoured; a socket opened with it ends then.
    pub expires_at: Option<u64>,
}

impl Principal {
    pub const ANONYMOUS: &'static str = "anonymous";

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing or malformed `Authorization` header, or an unknown key. One variant
    /// on purpose: telling a caller which it was helps only someone guessing keys.
    #[error("missing or unknown API key")]
    Unauthenticated,
}

struct Entry {
    id: String,
    digest: [u8; 32],
    scopes: Vec<Scope>,
    account: String,
}

pub struct Authenticator {
    entries: Vec<Entry>,
    /// From the configured list, not the usable entries: a malformed hash must make
    /// its key unusable, never switch the gateway to anonymous mode.
    keys_configured: bool,
    jwt: Option<Arc<JwtVerifier>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.entries.iter().map(|e| e.id.as_str()).collect();
        f.debug_struct("Authenticator")
            .field("key_ids", &ids)
            .field("keys_configured", &self.keys_configured)
            .field("jwt", &self.jwt)
            .finish()
    }
}

impl Authenticator {
    /// Keys come validated from `Config::load`; one that still has a bad hash (built
    /// by hand) is skipped with an error log, failing closed.
    pub fn new(keys: &[GatewayKeyConfig]) -> Authenticator {
        let entries = keys
            .iter()
            .filter_map(|key| {
                let mut digest = [0u8; 32];
                match hex::decode_to_slice(key.sha256.trim(), &mut digest) {
                    Ok(()) => Some(Entry {
                        id: key.id.clone(),
                        digest,
                        scopes: key.scopes.clone(),
                        account: key.account.clone(),
                    }),
                    Err(_) => {
                        tracing::error!(key_id = %key.id, "gateway key has a malformed sha256; it will never authenticate");
                        None
                    }
                }
            })
            .collect();
        Authenticator {
            entries,
            keys_configured: !keys.is_empty(),
            jwt: None,
        }
    }

    /// JWT sessions besides the keys (`[auth.jwt]`).
    pub(crate) fn with_jwt(mut self, verifier: JwtVerifier) -> Authenticator {
        self.jwt = Some(Arc::new(verifier));
        self
    }

    /// Whether callers must present a credential (a gateway key or a JWT).
    pub fn keys_configured(&self) -> bool {
        self.keys_configured || self.jwt.is_some()
    }

    /// Without configured keys or JWT every caller is the anonymous principal of
    /// the account `default` with every scope (the config then only allows a
    /// loopback listen address). A token shaped like a JWT ([`jwt::looks_like_jwt`])
    /// is checked as one when JWT sessions are configured, and never as a key.
    pub async fn authenticate(
        &self,
        authorization_header: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if !self.keys_configured() {
            return Ok(Principal {
                key_id: Principal::ANONYMOUS.to_string(),
                scopes: Scope::ALL.to_vec(),
                account: DEFAULT_ACCOUNT.to_string(),
                subject: None,
                expires_at: None,
            });
        }
        let Some(token) = authorization_header.and_then(bearer_token) else {
            tracing::debug!("rejected request: missing or malformed Authorization header");
            return Err(AuthError::Unauthenticated);
        };
        if let Some(jwt) = &self.jwt {
            if jwt::looks_like_jwt(token) || token.len() > jwt::MAX_TOKEN_BYTES {
                return jwt.verify(token).await;
            }
        }
        self.authenticate_key(token)
    }

    fn authenticate_key(&self, token: &str) -> Result<Principal, AuthError> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Look at every entry, so the time taken does not depend on which one matched.
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            if constant_time_eq(&entry.digest, &presented) {
                found = Some(entry);
            }
        }
        match found {
            Some(entry) => Ok(Principal {
                key_id: entry.id.clone(),
                scopes: entry.scopes.clone(),
                account: entry.account.clone(),
                subject: None,
                expires_at: None,
            }),
            None => {
                tracing::debug!("rejected request: unknown gateway API key");
                Err(AuthError::Unauthenticated)
            }
        }
    }
}

/// `Bearer <token>`; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[tokio::test]
    async fn a_malformed_hash_fails_closed() {
        let auth = Authenticator::new(&[GatewayKeyConfig {
            id: "bad".into(),
            sha256: "not-hex".into(),
            scopes: vec![Scope::Read],
            account: "default".into(),
        }]);
        assert!(auth.keys_configured());
        assert_eq!(
            auth.authenticate(None).await,
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            auth.authenticate(Some("Bearer not-hex")).await,
            Err(AuthError::Unauthenticated)
        );
    }
}
