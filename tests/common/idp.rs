//! A test identity provider: key pairs made in the test (RSA, P-256, Ed25519), their
//! JWKS served on port 0 by a tiny axum server, and tokens signed with them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://idp.test";
pub const AUDIENCE: &str = "brokergraph";

/// One signing key and its public half as a JWK.
pub struct SigningKey {
    pub kid: &'static str,
    pub alg: Algorithm,
    pub key: EncodingKey,
    pub jwk: Jwk,
    /// The public key as PEM (RSA only): what a key-confusion attacker uses as an
    /// HMAC secret.
    pub public_pem: Option<String>,
}

/// RSA key generation is slow; one key serves every test of the binary.
fn rsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::Generate;
        let private = rsa::PrivateKey::generate();
        let der = private.to_pkcs1_der().expect("PKCS#1");
        let key = EncodingKey::from_rsa_der(der.as_bytes());
        let pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("PEM");
        signing("rsa-1", Algorithm::RS256, key, Some(pem))
    })
}

fn es256_key() -> SigningKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let key = EncodingKey::from_ec_der(&pair.serialize_der());
    signing("ec-1", Algorithm::ES256, key, None)
}

fn ed25519_key() -> SigningKey {
    // PKCS#8 v1 of an Ed25519 seed: a fixed prefix and the 32 bytes.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend(rand::random::<[u8; 32]>());
    signing(
        "ed-1",
        Algorithm::EdDSA,
        EncodingKey::from_ed_der(&der),
        None,
    )
}

fn signing(kid: &'static str, alg: Algorithm, key: EncodingKey, pem: Option<String>) -> SigningKey {
    let mut jwk = Jwk::from_encoding_key(&key, alg).expect("a JWK of the key");
    jwk.common.key_id = Some(kid.to_string());
    SigningKey {
        kid,
        alg,
        key,
        jwk,
        public_pem: pem,
    }
}

/// What the JWKS endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    Keys,
    /// Never answers.
    Hang,
    /// 200 with a body that is no JWKS.
    Junk,
}

pub struct Idp {
    pub addr: SocketAddr,
    pub rsa: &'static SigningKey,
    pub es256: SigningKey,
    pub ed25519: SigningKey,
    /// JWKS requests served.
    pub fetches: Arc<AtomicU64>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Idp {
    pub async fn start() -> Idp {
        Idp::serving(Serving::Keys).await
    }

    pub async fn serving(serving: Serving) -> Idp {
        let (rsa, es256, ed25519) = (rsa_key(), es256_key(), ed25519_key());
        let set = JwkSet {
            keys: vec![rsa.jwk.clone(), es256.jwk.clone(), ed25519.jwk.clone()],
        };
        let body = serde_json::to_string(&set).unwrap();
        let fetches = Arc::new(AtomicU64::new(0));
        let counter = fetches.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let body = body.clone();
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    match serving {
                        Serving::Keys => body,
                        Serving::Junk => "<html>not today</html>".to_string(),
                        Serving::Hang => std::future::pending().await,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Idp {
            addr,
            rsa,
            es256,
            ed25519,
            fetches,
            shutdown: Some(tx),
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// A valid RS256 token of `sub` on `account`, reading and trading.
    pub fn token(&self, sub: &str, account: &str) -> String {
        self.sign(self.rsa, &claims(sub, account))
    }

    pub fn sign(&self, key: &SigningKey, claims: &Value) -> String {
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.to_string());
        jsonwebtoken::encode(&header, claims, &key.key).expect("a signed token")
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for ten minutes.
pub fn claims(sub: &str, account: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now(),
        "exp": now() + 600,
        "brokergraph_account": account,
        "scope": "read trade",
    })
}

/// A token signed with nothing: `alg: none`, an empty signature.
pub fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
    format!("{header}.{}.", b64.encode(claims.to_string()))
}

/// The `[auth.jwt]` section for this IdP.
pub fn settings(jwks_url: String) -> brokergraph::config::JwtSettings {
    brokergraph::config::JwtSettings {
        jwks_url: Some(jwks_url),
        issuer: ISSUER.to_string(),
        audience: AUDIENCE.to_string(),
        ..Default::default()
    }
}
