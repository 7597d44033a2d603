//! `POST /oauth/token`: an OAuth 2.0 authorization server for the paper accounts of
//! `--oauth-client ID:SECRET` (one account each), so a gateway can be tested against
//! short-lived access tokens and rotating refresh tokens (RFC 6749 §4.4, §6; RFC 9700
//! §4.14 on rotation).
//!
//! - `grant_type=client_credentials`: a new access token and a new refresh-token
//!   family (more generous than RFC 6749 §4.4.3 asks, so that a test can start a
//!   gateway from a refresh token, as an operator would from an authorization code).
//! - `grant_type=refresh_token`: the refresh token is spent and replaced (rotation);
//!   presenting a spent one again revokes its whole family, access tokens included.
//! - Client authentication by HTTP Basic or by `client_id`/`client_secret` in the
//!   form body (RFC 6749 §2.3.1). Errors are the RFC's JSON bodies.
//! - Access tokens expire after `token_ttl_secs`; one presented after that is a 401
//!   `invalid_token` (RFC 6750 §3.1), counted in `/sim/stats` `oauth.expired_rejected`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use crate::state::{lock, AppState};
use crate::stats::OAuthStats;

/// An access token's account, or why it is not accepted.
pub(crate) enum TokenCheck {
    Account(usize),
    Expired,
    Unknown,
}

struct AccessToken {
    account: usize,
    family: u64,
    expires: Instant,
}

struct RefreshToken {
    client: usize,
    family: u64,
    /// Replaced by a newer one of its family: presenting it again is reuse.
    spent: bool,
}

/// Tokens issued, by value. Each client is one account, after the API-key accounts.
pub(crate) struct OAuthServer {
    clients: Vec<(String, String)>,
    first_account: usize,
    ttl: Duration,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    revoked: std::collections::HashSet<u64>,
    next_family: u64,
    pub stats: OAuthStats,
}

impl OAuthServer {
    pub(crate) fn new(clients: &[(String, String)], first_account: usize, ttl_secs: u64) -> Self {
        OAuthServer {
            clients: clients.to_vec(),
            first_account,
            ttl: Duration::from_secs(ttl_secs),
            access: HashMap::new(),
            refresh: HashMap::new(),
            revoked: Default::default(),
            next_family: 1,
            stats: OAuthStats::default(),
        }
    }

    /// The account of a bearer access token.
    pub(crate) fn check(&mut self, token: &str) -> TokenCheck {
        match self.access.get(token) {
            Some(t) if self.revoked.contains(&t.family) => TokenCheck::Unknown,
            Some(t) if Instant::now() >= t.expires => {
                self.stats.expired_rejected += 1;
                TokenCheck::Expired
            }
            Some(t) => TokenCheck::Account(t.account),
            None => TokenCheck::Unknown,
        }
    }

    /// Ends the life of every access token now; returns how many were alive.
    pub(crate) fn expire_all(&mut self) -> usize {
        let now = Instant::now();
        let mut n = 0;
        for token in self.access.values_mut().filter(|t| t.expires > now) {
            token.expires = now;
            n += 1;
        }
        n
    }

    fn client(&self, id: &str, secret: &str) -> Option<usize> {
        self.clients
            .iter()
            .position(|(i, s)| i == id && s == secret)
    }

    fn issue(&mut self, client: usize, family: u64) -> serde_json::Value {
        let access = token("at");
        let refresh = token("rt");
        self.access.insert(
            access.clone(),
            AccessToken {
                account: self.first_account + client,
                family,
                expires: Instant::now() + self.ttl,
            },
        );
        self.refresh.insert(
            refresh.clone(),
            RefreshToken {
                client,
                family,
                spent: false,
            },
        );
        self.stats.issued += 1;
        // Expired tokens are kept (to answer `invalid_token`), but not forever.
        let horizon = self.ttl * 10 + Duration::from_secs(60);
        self.access
            .retain(|_, t| t.expires + horizon > Instant::now());
        json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.ttl.as_secs(),
            "refresh_token": refresh,
        })
    }

    fn grant(&mut self, client: usize, form: &TokenForm) -> Result<serde_json::Value, OAuthError> {
        match form.grant_type.as_deref() {
            Some("client_credentials") => {
                let family = self.next_family;
                self.next_family += 1;
                Ok(self.issue(client, family))
            }
            Some("refresh_token") => {
                let presented = form
                    .refresh_token
                    .as_deref()
                    .ok_or(OAuthError::InvalidRequest("refresh_token is required"))?;
                let Some(entry) = self.refresh.get_mut(presented) else {
                    return Err(OAuthError::InvalidGrant("unknown refresh token"));
                };
                if entry.client != client {
                    return Err(OAuthError::InvalidGrant("refresh token of another client"));
                }
                let family = entry.family;
                if self.revoked.contains(&family) {
                    return Err(OAuthError::InvalidGrant("refresh token revoked"));
                }
                if entry.spent {
                    self.revoked.insert(family);
                    self.stats.reuse_revoked += 1;
                    return Err(OAuthError::InvalidGrant(
                        "refresh token reused: its family is revoked",
                    ));
                }
                entry.spent = true;
                self.stats.refreshed += 1;
                Ok(self.issue(client, family))
            }
            Some(_) => Err(OAuthError::UnsupportedGrantType),
            None => Err(OAuthError::InvalidRequest("grant_type is required")),
        }
    }
}

fn token(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

/// RFC 6749 §5.2.
enum OAuthError {
    InvalidRequest(&'static str),
    InvalidClient,
    InvalidGrant(&'static str),
    UnsupportedGrantType,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            OAuthError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            OAuthError::InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            ),
            OAuthError::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", d),
            OAuthError::UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "client_credentials or refresh_token",
            ),
        };
        let mut response = (
            status,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"broker-sim\""),
            );
        }
        no_store(response)
    }
}

/// RFC 6749 §5.1: token responses are not cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `Authorization: Basic base64(id:secret)` (RFC 6749 §2.3.1, form-urlencoded parts).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

pub(crate) async fn token_endpoint(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return OAuthError::InvalidRequest("the body must be application/x-www-form-urlencoded")
            .into_response();
    };
    let credentials =
        basic(&headers).or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)));
    let mut server = lock(&app.oauth);
    let Some(client) = credentials.and_then(|(id, secret)| server.client(&id, &secret)) else {
        return OAuthError::InvalidClient.into_response();
    };
    match server.grant(client, &form) {
        Ok(body) => no_store((StatusCode::OK, axum::Json(body)).into_response()),
        Err(e) => e.into_response(),
    }
}
