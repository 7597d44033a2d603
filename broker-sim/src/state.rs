//! The shared state behind every route: one lock per concern, never held across an
//! `.await`, always taken in the order engine → idempotency → stats (the stream
//! registry and the fault dice are never held together with another).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::{Dialect, SimConfig};
use crate::engine::Engine;
use crate::faults::{FaultProfile, Faults};
use crate::idempotency::IdempotencyStore;
use crate::oauth::{OAuthServer, TokenCheck};
use crate::ratelimit::RateLimiter;
use crate::stats::{Recorder, Stats};
use crate::stream::{CloseAll, Streams};

/// The v1 route keys, as used in stats and fault rules.
pub(crate) const V1_ROUTES: &[&str] = &[
    "GET /v1/account",
    "GET /v1/instruments",
    "GET /v1/instruments/{symbol}",
    "GET /v1/positions",
    "GET /v1/quotes",
    "POST /v1/orders",
    "GET /v1/orders",
    "GET /v1/orders/{id}",
    "DELETE /v1/orders/{id}",
    "PATCH /v1/orders/{id}",
    "GET /v1/stream",
];

/// The route keys of the dialect being served, as request faults see them.
pub(crate) fn routes(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Generic => V1_ROUTES,
        Dialect::Alpaca => crate::alpaca::ROUTES,
    }
}

/// The route key of the dialect's order stream, as stream faults see it.
pub(crate) fn stream_route(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Generic => crate::stream::v1::ROUTE,
        Dialect::Alpaca => crate::alpaca::stream::ROUTE,
    }
}

pub(crate) struct AppState {
    pub config: SimConfig,
    keys: HashMap<String, usize>,
    pub engine: Mutex<Engine>,
    pub idempotency: Mutex<IdempotencyStore>,
    pub limiter: Mutex<RateLimiter>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<Recorder>,
    pub streams: Streams,
    /// `POST /oauth/token` and the access tokens it issued.
    pub oauth: Mutex<OAuthServer>,
    /// Flips to true on shutdown; hung requests wait on it.
    pub shutdown: watch::Receiver<bool>,
}

/// A poisoned lock only means a panic elsewhere; the data is still usable for a sim.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

impl AppState {
    pub(crate) fn new(config: SimConfig, shutdown: watch::Receiver<bool>) -> AppState {
        let keys = config
            .api_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let n = config.account_count();
        AppState {
            oauth: Mutex::new(OAuthServer::new(
                &config.oauth_clients,
                config.api_keys.len(),
                config.token_ttl_secs,
            )),
            engine: Mutex::new(Engine::new(&config, now())),
            idempotency: Mutex::new(IdempotencyStore::new(n, config.max_idempotency_keys)),
            limiter: Mutex::new(RateLimiter::new(
                n,
                config.rate_limit,
                config.rate_window_secs,
            )),
            faults: Mutex::new(Faults::new(
                config.faults.clone().unwrap_or_default(),
                config.seed,
            )),
            stats: Mutex::new(Recorder::default()),
            streams: Streams::new(),
            keys,
            config,
            shutdown,
        }
    }

    /// The account of the request's credentials, if they are one of ours: a bearer
    /// key, or in the Alpaca dialect the `APCA-API-KEY-ID`/`-SECRET-KEY` pair.
    /// In the generic dialect also an access token from `/oauth/token`, which may
    /// have expired.
    pub(crate) fn account_for(&self, headers: &HeaderMap) -> TokenCheck {
        let token = match self.config.dialect {
            Dialect::Generic => bearer(headers),
            Dialect::Alpaca => crate::alpaca::credentials(headers),
        };
        let Some(token) = token else {
            return TokenCheck::Unknown;
        };
        match self.keys.get(token) {
            Some(acct) => TokenCheck::Account(*acct),
            None if self.config.dialect == Dialect::Generic => lock(&self.oauth).check(token),
            None => TokenCheck::Unknown,
        }
    }

    /// The account of an API key given in a message rather than a header.
    pub(crate) fn account_of_key(&self, key: &str) -> Option<usize> {
        self.keys.get(key).copied()
    }

    /// Back to the seeded initial state: market, accounts, orders, keys, windows, stats
    /// and the configured fault profile. Stream connections are closed: their sequence
    /// numbers restart with the new engine, so a client must reconnect and resync.
    pub(crate) fn reset(&self) {
        self.streams.close_all(CloseAll::Restart);
        let n = self.config.account_count();
        lock(&self.oauth).stats = Default::default();
        *lock(&self.engine) = Engine::new(&self.config, now());
        *lock(&self.idempotency) = IdempotencyStore::new(n, self.config.max_idempotency_keys);
        *lock(&self.limiter) =
            RateLimiter::new(n, self.config.rate_limit, self.config.rate_window_secs);
        *lock(&self.faults) = Faults::new(
            self.config.faults.clone().unwrap_or_default(),
            self.config.seed,
        );
        *lock(&self.stats) = Recorder::default();
    }

    pub(crate) fn set_faults(&self, profile: FaultProfile) -> Result<(), String> {
        profile.validate(
            routes(self.config.dialect),
            stream_route(self.config.dialect),
        )?;
        *lock(&self.faults) = Faults::new(profile, self.config.seed);
        Ok(())
    }

    pub(crate) fn stats(&self) -> Stats {
        let (orders_created, open, stored, ticks) = {
            let e = lock(&self.engine);
            (
                e.orders_created,
                e.open_order_count(),
                e.stored_order_count(),
                e.tick,
            )
        };
        let keys = lock(&self.idempotency).len() as u64;
        let mut stats = lock(&self.stats).stats.clone();
        stats.orders_created = orders_created;
        stats.open_orders = open;
        stats.stored_orders = stored;
        stats.idempotency_keys = keys;
        stats.ticks = ticks;
        stats.streams.open = self.streams.open_count();
        stats.streams.data_open = self.streams.data_open_count();
        stats.streams.quote_symbols = self.streams.quote_symbols();
        stats.oauth = lock(&self.oauth).stats.clone();
        stats
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves once shutdown has been requested.
pub(crate) async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}
