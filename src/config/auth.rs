//! `[auth.jwt]`: JWT sessions from the frontend's identity provider (DESIGN §12,
//! docs/configuration.md "JWT sessions"). A browser holds a short-lived token its
//! IdP signed instead of a gateway key; the token's claims name the account and
//! the scopes.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;
use crate::secret::Secret;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Unset: callers authenticate with gateway keys only.
    pub jwt: Option<JwtSettings>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// The IdP's public keys as a JWKS document on disk.
    pub jwks_file: Option<PathBuf>,
    /// The IdP's JWKS endpoint (`https://idp.example/.well-known/jwks.json`).
    pub jwks_url: Option<String>,
    /// How long one JWKS fetch may take; past it the keys held are used.
    #[serde(rename = "jwks_timeout_ms", deserialize_with = "duration::millis")]
    pub jwks_timeout: Duration,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry (this gateway's name at the IdP).
    pub audience: String,
    /// The claim naming the caller's account (`[[accounts]]` id).
    pub account_claim: String,
    /// The claim with the caller's scopes: space-separated `read`/`trade` (or a list).
    pub scope_claim: String,
    /// HS256 is refused unless this shared secret is set: an IdP that signs with a
    /// secret shares it with every verifier, so it must be a deliberate choice.
    pub hs256_secret: Option<Secret>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(rename = "leeway_secs", deserialize_with = "duration::secs")]
    pub leeway: Duration,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            jwks_file: None,
            jwks_url: None,
            jwks_timeout: Duration::from_millis(5_000),
            issuer: String::new(),
            audience: String::new(),
            account_claim: "brokergraph_account".to_string(),
            scope_claim: "scope".to_string(),
            hs256_secret: None,
            leeway: Duration::from_secs(30),
        }
    }
}

impl AuthSettings {
    pub(crate) fn jwt_configured(&self) -> bool {
        self.jwt.is_some()
    }

    pub(crate) fn validate(&mut self) -> Check {
        let Some(jwt) = &mut self.jwt else {
            return Ok(());
        };
        jwt.issuer = jwt.issuer.trim().to_string();
        jwt.audience = jwt.audience.trim().to_string();
        if jwt.issuer.is_empty() {
            fail(
                "auth.jwt.issuer",
                "is required: the `iss` your IdP puts in its tokens",
            )?;
        }
        if jwt.audience.is_empty() {
            fail(
                "auth.jwt.audience",
                "is required: the `aud` your IdP issues tokens for",
            )?;
        }
        for (key, claim) in [
            ("auth.jwt.account_claim", &jwt.account_claim),
            ("auth.jwt.scope_claim", &jwt.scope_claim),
        ] {
            if claim.trim().is_empty() {
                fail(key, "must not be empty")?;
            }
        }
        if let Some(url) = &jwt.jwks_url {
            match reqwest::Url::parse(url.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => fail("auth.jwt.jwks_url", "must be an http:// or https:// URL")?,
            }
        }
        if let Some(secret) = &jwt.hs256_secret {
            // RFC 7518 §3.2: an HS256 key at least as long as the hash.
            if secret.expose().len() < 32 {
                fail("auth.jwt.hs256_secret", "must be at least 32 bytes")?;
            }
        }
        match (&jwt.jwks_file, &jwt.jwks_url, &jwt.hs256_secret) {
            (Some(_), Some(_), _) => {
                fail("auth.jwt.jwks_url", "set jwks_file or jwks_url, not both")?
            }
            (None, None, None) => fail(
                "auth.jwt",
                "needs the IdP's keys: jwks_url, jwks_file or (for HS256 only) hs256_secret",
            )?,
            _ => {}
        }
        positive(&[("auth.jwt.jwks_timeout_ms", jwt.jwks_timeout)])
    }
}
