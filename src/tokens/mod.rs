//! OAuth 2.0 access tokens for accounts with `[accounts.oauth]` (DESIGN §12): the
//! `broker::transport::BearerSource` an adapter asks for the token of each call.
//!
//! - Refreshed ahead of expiry (`oauth.refresh_before_ms`, at most half the
//!   token's life), so calls rarely wait and none is sent with a token about to
//!   expire; a caller arriving while a refresh runs keeps using the old token
//!   while it is valid.
//! - One refresh at a time per account: in-process by an async mutex, across
//!   processes by the store's lock (a file lock, or a Redis lock with replicas).
//!   Under the lock the stored tokens are read first: another process may have
//!   refreshed already, and then its tokens are used instead of spending the
//!   rotated refresh token a second time (which the broker punishes by revoking
//!   the family).
//! - The new refresh token is stored (encrypted) before the new access token is
//!   handed out: a crash right after cannot lose the only refresh token that works.
//! - A refused grant (`invalid_grant`, `invalid_client`, `unauthorized_client`)
//!   makes every call of this account `BrokerError::ReauthRequired` until restart
//!   with new tokens; other failures (endpoint down, hanging, garbage) are
//!   `TokenUnavailable` for that call, or, while the current token still works, a
//!   later retry.
//!
//! Tokens are `Secret`s; logs name the account and the grant, never a token.

mod linked;
mod seal;
mod sealed_file;
mod store;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken, RequestTokenError,
    TokenResponse, TokenUrl,
};
use sha2::{Digest, Sha256};

use crate::broker::transport::BearerSource;
use crate::broker::BrokerError;
use crate::config::OAuthConfig;
use crate::secret::Secret;
pub(crate) use linked::{LinkedFile, LinkedRedis, LinkedStore};
use store::Record;
pub(crate) use store::{FileStore, RedisStore, StoreError, TokenStore};

type Client =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// After a failed refresh while the current token still works, the next attempt
/// waits this long, so a down token endpoint is not asked on every call.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// One OAuth account's tokens.
pub(crate) struct TokenSource {
    account: String,
    client: Client,
    http: reqwest::Client,
    scopes: Vec<oauth2::Scope>,
    /// Which configured refresh token the stored tokens must descend from.
    seed: String,
    refresh_before: Duration,
    store: Arc<dyn TokenStore>,
    state: Mutex<State>,
    /// Held by the one refresh in flight.
    flight: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    access: Option<Access>,
    refresh_token: Option<Secret>,
    /// The last token the broker answered 401 to: never taken back from the store.
    rejected: Option<Secret>,
    reauth: bool,
    retry_at: Option<Instant>,
}

struct Access {
    token: Secret,
    refresh_at: Instant,
    expires_at: Option<Instant>,
    /// The same, as wall-clock time (the expiry gauge, the store).
    expires_wall: Option<SystemTime>,
}

impl Access {
    fn valid(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl TokenSource {
    /// `http` is the client token requests go through (the broker's timeouts, no
    /// redirects: a redirect would carry the client secret elsewhere).
    pub(crate) fn new(
        account: &str,
        oauth: &OAuthConfig,
        refresh_before: Duration,
        store: Arc<dyn TokenStore>,
        http: reqwest::Client,
    ) -> Result<TokenSource, String> {
        let token_url = TokenUrl::new(oauth.token_url.trim().to_string())
            .map_err(|e| format!("token_url: {e}"))?;
        let client = BasicClient::new(ClientId::new(oauth.client_id.clone()))
            .set_client_secret(ClientSecret::new(oauth.client_secret.expose().to_string()))
            .set_token_uri(token_url);
        let seed = match &oauth.refresh_token {
            Some(rt) => hex::encode(Sha256::digest(rt.expose().as_bytes())),
            None => "client_credentials".to_string(),
        };
        Ok(TokenSource {
            account: account.to_string(),
            client,
            http,
            scopes: oauth
                .scopes
                .iter()
                .cloned()
                .map(oauth2::Scope::new)
                .collect(),
            seed,
            refresh_before,
            store,
            state: Mutex::new(State {
                refresh_token: oauth.refresh_token.clone(),
                ..State::default()
            }),
            flight: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the current access token expires, for the expiry gauge.
    pub(crate) fn expires_at(&self) -> Option<SystemTime> {
        self.state().access.as_ref()?.expires_wall
    }

    /// The current token if it may be sent without refreshing first.
    fn current(&self, may_be_due: bool) -> Result<Option<Secret>, BrokerError> {
        let state = self.state();
        if state.reauth {
            return Err(BrokerError::ReauthRequired);
        }
        let now = Instant::now();
        Ok(state.access.as_ref().and_then(|a| {
            let fresh = now < a.refresh_at;
            let waiting = state.retry_at.is_some_and(|t| now < t);
            (fresh || (may_be_due && a.valid(now)) || (waiting && a.valid(now)))
                .then(|| a.token.clone())
        }))
    }

    async fn refresh(&self) -> Result<Secret, BrokerError> {
        let _flight = self.flight.lock().await;
        if let Some(token) = self.current(false)? {
            return Ok(token);
        }
        let unavailable = |e: StoreError| {
            tracing::error!(account = %self.account, error = %e, "token store failed");
            BrokerError::TokenUnavailable(e.to_string())
        };
        let _lock = self.store.lock(&self.account).await.map_err(unavailable)?;
        if let Some(record) = self.store.load(&self.account).await.map_err(unavailable)? {
            if let Some(token) = self.adopt(record) {
                return Ok(token);
            }
        }
        let refresh_token = self.state().refresh_token.clone();
        let grant = match &refresh_token {
            Some(rt) => {
                let rt = RefreshToken::new(rt.expose().to_string());
                self.client
                    .exchange_refresh_token(&rt)
                    .add_scopes(self.scopes.clone())
                    .request_async(&self.http)
                    .await
            }
            None => {
                self.client
                    .exchange_client_credentials()
                    .add_scopes(self.scopes.clone())
                    .request_async(&self.http)
                    .await
            }
        };
        let kind = if refresh_token.is_some() {
            "refresh_token"
        } else {
            "client_credentials"
        };
        let response = match grant {
            Ok(response) => response,
            Err(err) => return self.failed(kind, err),
        };
        let now = Instant::now();
        let lifetime = response.expires_in();
        let record = Record {
            seed: self.seed.clone(),
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| refresh_token.as_ref().map(|t| t.expose().to_string())),
            access_token: Some(response.access_token().secret().clone()),
            expires_at_ms: lifetime.map(|l| unix_ms(SystemTime::now() + l)),
            lifetime_ms: lifetime.map(|l| l.as_millis() as u64),
        };
        let stored = self.store.save(&self.account, &record).await;
        let mut state = self.state();
        state.refresh_token = record.refresh_token.clone().map(Secret::new);
        if let Err(e) = stored {
            // The old refresh token is spent: keep the new one in memory, and hand
            // out nothing until it is stored (the next call tries again).
            state.access = None;
            drop(state);
            return Err(unavailable(e));
        }
        tracing::info!(account = %self.account, grant = kind, expires_in_secs = lifetime.map(|l| l.as_secs()), "new broker access token");
        let token = Secret::new(response.access_token().secret().clone());
        state.access = Some(self.access(token.clone(), now, lifetime, lifetime));
        state.retry_at = None;
        Ok(token)
    }

    /// Takes the stored tokens when they descend from the configured ones: the
    /// refresh token always (it may have rotated), the access token when it is not
    /// due yet and not the one the broker refused. Returns that access token.
    fn adopt(&self, record: Record) -> Option<Secret> {
        if record.seed != self.seed {
            return None;
        }
        let mut state = self.state();
        if let Some(rt) = record.refresh_token {
            state.refresh_token = Some(Secret::new(rt));
        }
        let token = Secret::new(record.access_token?);
        if state.rejected.as_ref() == Some(&token) {
            return None;
        }
        let left = match record.expires_at_ms {
            Some(at) => Some(Duration::from_millis(
                at.checked_sub(unix_ms(SystemTime::now()))?,
            )),
            None => None,
        };
        let lifetime = record.lifetime_ms.map(Duration::from_millis).or(left);
        let access = self.access(token.clone(), Instant::now(), left, lifetime);
        if Instant::now() >= access.refresh_at {
            return None;
        }
        state.access = Some(access);
        state.retry_at = None;
        Some(token)
    }

    /// A token with `left` to live out of `lifetime`: refreshed `refresh_before`
    /// before the end, or halfway through a shorter life.
    fn access(
        &self,
        token: Secret,
        now: Instant,
        left: Option<Duration>,
        lifetime: Option<Duration>,
    ) -> Access {
        let Some(left) = left else {
            return Access {
                token,
                refresh_at: now + Duration::from_secs(365 * 24 * 3600),
                expires_at: None,
                expires_wall: None,
            };
        };
        let ahead = self.refresh_before.min(lifetime.unwrap_or(left) / 2);
        Access {
            token,
            refresh_at: now + left.saturating_sub(ahead),
            expires_at: Some(now + left),
            expires_wall: Some(SystemTime::now() + left),
        }
    }

    fn failed<RE: std::error::Error + 'static>(
        &self,
        grant: &'static str,
        err: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
    ) -> Result<Secret, BrokerError> {
        let reason = match &err {
            RequestTokenError::ServerResponse(response) => match response.error() {
                BasicErrorResponseType::InvalidGrant
                | BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    tracing::warn!(account = %self.account, grant, error = %response.error(), "the token endpoint refused the account's authorization: calls fail with BROKER_REAUTH_REQUIRED until it is authorized again");
                    self.state().reauth = true;
                    return Err(BrokerError::ReauthRequired);
                }
                other => format!("the token endpoint refused: {other}"),
            },
            RequestTokenError::Request(e) => format!("the token endpoint did not answer: {e}"),
            // Neither carries the body: it may hold a token.
            RequestTokenError::Parse(_, _) => "the token endpoint's answer is unreadable".into(),
            RequestTokenError::Other(_) => "the token endpoint answered an error".into(),
        };
        tracing::warn!(account = %self.account, grant, %reason, "could not get a broker access token");
        let mut state = self.state();
        let now = Instant::now();
        match state.access.as_ref().filter(|a| a.valid(now)) {
            Some(access) => {
                let token = access.token.clone();
                state.retry_at = Some(now + RETRY_AFTER_FAILURE);
                Ok(token)
            }
            None => Err(BrokerError::TokenUnavailable(reason)),
        }
    }
}

#[async_trait]
impl BearerSource for TokenSource {
    async fn bearer(&self) -> Result<Secret, BrokerError> {
        // While another task refreshes, a token that still works is used.
        let refreshing = self.flight.try_lock().is_err();
        if let Some(token) = self.current(refreshing)? {
            return Ok(token);
        }
        self.refresh().await
    }

    fn invalidate(&self, used: &Secret) {
        let mut state = self.state();
        if state.access.as_ref().is_some_and(|a| &a.token == used) {
            state.access = None;
        }
        state.rejected = Some(used.clone());
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
