//! JWT sessions (`[auth.jwt]`): a token the frontend's identity provider signed
//! becomes a [`Principal`] on the account and with the scopes its claims name.
//!
//! What the checks defend against:
//! - the algorithm is the verifying key's (`jwks::VerifyKey::alg`), never the
//!   token's: `alg: none` does not parse, and an HS256 token cannot be verified
//!   with an RSA public key used as its HMAC secret (key confusion);
//! - `exp` is required, `nbf` honoured, both with `auth.jwt.leeway_secs`; `iss` and
//!   `aud` must be the configured ones;
//! - a token over [`MAX_TOKEN_BYTES`] is refused before anything parses it.
//!
//! Why a token was refused is logged at debug and never told to the caller (all
//! are `UNAUTHENTICATED`), as for gateway keys.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::jwks::{Jwks, JwksError, Source};
use super::{AuthError, Principal};
use crate::config::{JwtSettings, Scope};

/// Real ID and access tokens are one or two kilobytes; anything past this is
/// refused unparsed.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The `key_id` of every JWT principal is this prefix and the token's `sub`, so
/// per-key limits (requests, connections) apply per signed-in user.
pub(crate) const KEY_ID_PREFIX: &str = "jwt:";

pub(crate) struct JwtVerifier {
    jwks: Option<Arc<Jwks>>,
    hs256: Option<DecodingKey>,
    issuer: String,
    audience: String,
    account_claim: String,
    scope_claim: String,
    leeway: Duration,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("hs256", &self.hs256.is_some())
            .finish()
    }
}

impl JwtVerifier {
    /// Loads the JWKS (see [`Jwks::load`]).
    pub(crate) async fn new(settings: &JwtSettings) -> Result<JwtVerifier, JwksError> {
        let source = match (&settings.jwks_file, &settings.jwks_url) {
            (Some(path), _) => Some(Source::File(path.clone())),
            (None, Some(url)) => Some(Source::Url {
                client: reqwest::Client::builder()
                    .timeout(settings.jwks_timeout)
                    .connect_timeout(settings.jwks_timeout)
                    .build()
                    .map_err(|e| JwksError::Fetch(e.to_string()))?,
                url: url.trim().to_string(),
            }),
            (None, None) => None,
        };
        let jwks = match source {
            Some(source) => Some(Arc::new(Jwks::load(source).await?)),
            None => None,
        };
        let hs256 = match &settings.hs256_secret {
            Some(secret) => Some(
                DecodingKey::from_secret(secret.expose().as_bytes())
                    .map_err(|e| JwksError::Junk(e.to_string()))?,
            ),
            None => None,
        };
        Ok(JwtVerifier {
            jwks,
            hs256,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            account_claim: settings.account_claim.clone(),
            scope_claim: settings.scope_claim.clone(),
            leeway: settings.leeway,
        })
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let refuse = |why: &str| {
            tracing::debug!(reason = why, "rejected JWT");
            AuthError::Unauthenticated
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse("token too large"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("bad header"))?;
        let claims = match header.alg {
            Algorithm::HS256 => {
                let key = self
                    .hs256
                    .as_ref()
                    .ok_or_else(|| refuse("HS256 not configured"))?;
                self.decode(token, key, Algorithm::HS256)
            }
            alg => {
                let jwks = self
                    .jwks
                    .as_ref()
                    .ok_or_else(|| refuse("no JWKS configured"))?;
                let kid = header.kid.as_deref();
                let keys = jwks.keys_for(kid, alg).await;
                keys.iter()
                    .filter(|k| k.matches(kid, alg))
                    .find_map(|k| self.decode(token, &k.key, k.alg))
            }
        };
        let claims = claims.ok_or_else(|| refuse("signature or claims"))?;
        self.principal(&claims)
            .ok_or_else(|| refuse("missing claim"))
    }

    /// The claims when `key` (verifying `alg` only) accepts the token.
    fn decode(&self, token: &str, key: &DecodingKey, alg: Algorithm) -> Option<Map<String, Value>> {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
            Ok(data) => Some(data.claims),
            Err(e) => {
                tracing::debug!(error = %e, "JWT not accepted by a key");
                None
            }
        }
    }

    fn principal(&self, claims: &Map<String, Value>) -> Option<Principal> {
        let subject = claims.get("sub")?.as_str()?.to_string();
        let account = claims
            .get(&self.account_claim)?
            .as_str()?
            .trim()
            .to_string();
        if account.is_empty() || subject.is_empty() {
            return None;
        }
        let names: Vec<&str> = match claims.get(&self.scope_claim) {
            Some(Value::String(s)) => s.split_whitespace().collect(),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let scopes = Scope::ALL
            .into_iter()
            .filter(|s| names.contains(&s.as_str()))
            .collect();
        Some(Principal {
            key_id: format!("{KEY_ID_PREFIX}{subject}"),
            scopes,
            account,
            subject: Some(subject),
            expires_at: claims
                .get("exp")?
                .as_u64()?
                .checked_add(self.leeway.as_secs()),
        })
    }
}

/// Whether a bearer token is a JWT rather than a gateway key: a compact JWS is
/// three base64url segments and its header is a JSON object, so it starts with
/// `eyJ` (`{"`). A gateway key made as documented (hex) has no `.`, so the two
/// never meet; any other token is taken for a gateway key.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ")
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_and_gateway_keys_are_told_apart() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
        assert!(!looks_like_jwt(&"ab12".repeat(16)));
        assert!(!looks_like_jwt("eyJ.only-two"));
        assert!(!looks_like_jwt("eyJa.b.c.d"));
        assert!(!looks_like_jwt("eyJa.b c.d"));
        assert!(!looks_like_jwt("abc.def.ghi"));
    }
}
