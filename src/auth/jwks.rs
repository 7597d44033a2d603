//! The identity provider's public keys (a JWKS document), from a file or a URL,
//! held in memory and refetched when a token names a `kid` we do not hold (the
//! IdP rotated its keys) or when the set is old.
//!
//! Fetches are bounded three ways, so that tokens a client makes up cannot turn
//! the gateway into a flood against the IdP nor stall it: one fetch at a time, at
//! most one a minute, each within `auth.jwt.jwks_timeout_ms`. A failed fetch
//! (timeout, error, junk) keeps the keys held: a short IdP outage must not sign
//! every user out.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::time::Instant;

/// At most one refetch per this interval, whatever tokens arrive.
const MIN_REFETCH: Duration = Duration::from_secs(60);
/// A set older than this is refreshed in the background (keys the IdP retired
/// stop being accepted).
const MAX_AGE: Duration = Duration::from_secs(600);
/// The largest JWKS document read; a real one is a few kilobytes.
const MAX_BYTES: usize = 256 * 1024;

/// One verification key: its `kid` and the one algorithm it verifies.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    /// Decided from the key (its `alg`, else its type and curve), never from a
    /// token: a token cannot ask for an RSA key to be used as an HMAC secret.
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

impl VerifyKey {
    /// Whether this key may verify a token with this header: its algorithm, and
    /// its `kid` when the token names one.
    pub(crate) fn matches(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.alg == alg && (kid.is_none() || self.kid.as_deref() == kid)
    }
}

#[derive(Clone)]
pub(crate) enum Source {
    File(PathBuf),
    Url {
        client: reqwest::Client,
        url: String,
    },
}

struct Held {
    keys: Arc<Vec<VerifyKey>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

pub(crate) struct Jwks {
    source: Source,
    held: RwLock<Held>,
    /// One fetch at a time; a caller that waited finds the new set.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksError {
    #[error("reading {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fetching the JWKS: {0}")]
    Fetch(String),
    #[error("the JWKS is not a JSON object with `keys`: {0}")]
    Junk(String),
}

impl Jwks {
    /// A file is read now (a bad one stops the start); a URL is fetched now, and
    /// if the IdP does not answer the gateway starts without keys and tries again
    /// when the first token arrives.
    pub(crate) async fn load(source: Source) -> Result<Jwks, JwksError> {
        let jwks = Jwks {
            source,
            held: RwLock::new(Held {
                keys: Arc::new(Vec::new()),
                fetched: None,
                attempted: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        };
        match (&jwks.source, jwks.refetch().await) {
            (Source::File(_), Err(e)) => return Err(e),
            (Source::Url { .. }, Err(e)) => {
                tracing::warn!(error = %e, "JWKS not loaded at start; JWT sessions are refused until it is")
            }
            _ => {}
        }
        // The first token with an unknown `kid` may refetch at once: the limit is
        // for tokens, not for the start.
        jwks.held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .attempted = None;
        Ok(jwks)
    }

    /// The keys held, refetched first when none has this header's `kid` and
    /// algorithm (within the limits above); the caller picks the matching ones.
    pub(crate) async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Arc<Vec<VerifyKey>> {
        let held = self.snapshot();
        if held.iter().any(|k| k.matches(kid, alg)) {
            self.refresh_if_old();
            return held;
        }
        if kid.is_some() && self.may_refetch() {
            if let Err(e) = self.refetch().await {
                tracing::warn!(error = %e, "JWKS refetch failed; keeping the keys held");
            }
            return self.snapshot();
        }
        held
    }

    fn snapshot(&self) -> Arc<Vec<VerifyKey>> {
        self.held
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .clone()
    }

    fn may_refetch(&self) -> bool {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        held.attempted.is_none_or(|at| at.elapsed() >= MIN_REFETCH)
    }

    fn refresh_if_old(self: &Arc<Self>) {
        let old = {
            let held = self.held.read().unwrap_or_else(|e| e.into_inner());
            held.fetched.is_some_and(|at| at.elapsed() >= MAX_AGE)
        };
        if old && self.may_refetch() {
            let jwks = self.clone();
            tokio::spawn(async move {
                if let Err(e) = jwks.refetch().await {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys held");
                }
            });
        }
    }

    async fn refetch(&self) -> Result<(), JwksError> {
        let _one = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if !self.may_refetch() {
            return Ok(());
        }
        self.held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .attempted = Some(Instant::now());
        let document = match &self.source {
            Source::File(path) => {
                tokio::fs::read(path)
                    .await
                    .map_err(|source| JwksError::File {
                        path: path.clone(),
                        source,
                    })?
            }
            Source::Url { client, url } => fetch(client, url).await?,
        };
        let keys = parse(&document)?;
        tracing::info!(keys = keys.len(), "JWKS loaded");
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        held.keys = Arc::new(keys);
        held.fetched = Some(Instant::now());
        Ok(())
    }
}

/// The client's own timeout bounds the whole exchange, the body included.
async fn fetch(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, JwksError> {
    let fail = |e: reqwest::Error| JwksError::Fetch(e.without_url().to_string());
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(fail)?
        .error_for_status()
        .map_err(fail)?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fail)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err(JwksError::Junk(format!("larger than {MAX_BYTES} bytes")));
        }
    }
    Ok(body)
}

/// Every usable signing key of the document; a key of a kind we do not verify
/// (HMAC, encryption, another curve) is skipped, so that one odd key does not
/// make the whole set unusable.
pub(crate) fn parse(document: &[u8]) -> Result<Vec<VerifyKey>, JwksError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let doc: Document =
        serde_json::from_slice(document).map_err(|e| JwksError::Junk(e.to_string()))?;
    Ok(doc
        .keys
        .into_iter()
        .filter_map(|value| {
            let jwk: Jwk = serde_json::from_value(value).ok()?;
            let key = verify_key(&jwk);
            if key.is_none() {
                tracing::debug!(kid = ?jwk.common.key_id, "JWKS key skipped: not an RS256, ES256 or EdDSA signing key");
            }
            key
        })
        .collect())
}

fn verify_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => by_type,
        Some(KeyAlgorithm::RS256) if by_type == Algorithm::RS256 => by_type,
        Some(KeyAlgorithm::ES256) if by_type == Algorithm::ES256 => by_type,
        Some(KeyAlgorithm::EdDSA) if by_type == Algorithm::EdDSA => by_type,
        Some(_) => return None,
    };
    Some(VerifyKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}
