//! broker-sim: a paper broker that speaks the generic v1 REST dialect of brokergraph
//! (README.md, "The v1 API"; `/openapi.json`) over real HTTP, with a deterministic
//! simulated market, Stripe-style idempotency, a per-key rate limiter, order event
//! streams and quotes over WebSockets (README.md, "Streams", "Quotes") and seeded fault
//! injection.
//!
//! It exists so that the gateway can be tested, benchmarked and demonstrated against
//! something that fails like a real broker does, repeatably. Start it in-process with
//! [`spawn`] (port 0 in tests) or as the `broker-sim` binary.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = broker_sim::spawn(broker_sim::SimConfig::default()).await?;
//! println!("broker at {} (key {})", sim.base_url(), sim.api_key());
//! // ... drive it over HTTP, then look at what it saw:
//! assert_eq!(sim.stats().await.orders_created, 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `config`: [`SimConfig`], the knobs shared by the library and the CLI.
//! - `market`: the seeded universe of instruments, the price random walk, and the quotes
//!   (bid/ask/last) derived from it.
//! - `quotes`: quote snapshots for REST in both dialects (the symbols parameter, its
//!   limit, reading every asked quote at one tick).
//! - `orders`: the order model and how much of an order can execute at a price.
//! - `accounts`: cash, positions and the arithmetic that keeps equity exact.
//! - `engine`: submission, cancellation, matching on ticks and price changes, session closes.
//! - `events`: every order change as a numbered event per account, kept for replay and
//!   fanned out to live streams.
//! - `order_input`: reads an order body by hand so every mistake names its field.
//! - `validation`: the order rules that need the instrument and the account (422s).
//! - `idempotency`: Stripe-style key claims, stored responses and replays.
//! - `ratelimit`: the fixed window per API key and the `X-RateLimit-*` headers.
//! - `faults`: the fault profile and the seeded dice that apply it, to requests and to
//!   stream messages.
//! - `pagination`: keyset cursors (and offsets) for every list.
//! - `stats`: request, order and stream counters behind `/sim/stats`.
//! - `error`: the one error enum and its mapping to the JSON error envelope.
//! - `wire`: the JSON this server sends, over REST and over the v1 stream.
//! - `state`: the shared state and its locks.
//! - `pipeline`: auth, rate limit, faults and stats in front of every v1 handler.
//! - `api`: the v1 routes (reads and cancel); `submit`: `POST /v1/orders` with idempotency;
//!   `replace`: `PATCH /v1/orders/{id}` under the same idempotency.
//! - `stream`: the streams' plumbing shared by both dialects (one connection per key and
//!   kind, stream faults, pings, each connection's quote symbols and their timer,
//!   closing); `stream::v1`: `GET /v1/stream` (order events and quotes).
//! - `alpaca`: the same engine behind Alpaca's Trading API v2 routes and JSON
//!   (`SimConfig::dialect`), so an Alpaca adapter can be tested end to end;
//!   `alpaca::stream`: Alpaca's trade updates at `GET /stream`; `alpaca::data`: Alpaca's
//!   market data (latest quotes over REST, the quote stream at `/v2/iex` and `/v2/sip`).
//! - `admin`: the `/sim/` control plane; `openapi`: `/openapi.json`.
//! - `server`: the hyper accept loop that can drop a connection on purpose, lets
//!   WebSocket upgrades through, and drains on shutdown.

mod accounts;
mod admin;
mod alpaca;
mod api;
mod config;
mod engine;
mod error;
mod events;
mod faults;
mod idempotency;
mod market;
mod oauth;
mod openapi;
mod order_input;
mod orders;
mod pagination;
mod pipeline;
mod quotes;
mod ratelimit;
mod replace;
mod server;
mod state;
mod stats;
mod stream;
mod submit;
mod validation;
mod wire;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Dialect, SimConfig};
pub use faults::{CommitFailure, FaultKind, FaultProfile, FaultRule};
pub use stats::{OAuthStats, Stats, StreamStats};

use state::{lock, AppState};

/// Well inside the space of 2–5 letter symbols, so generation always terminates quickly.
const MAX_INSTRUMENTS: usize = 1_000_000;

/// Binds `config.listen` and serves in the background until [`SimHandle::shutdown`]
/// (or until the handle is dropped).
pub async fn spawn(config: SimConfig) -> io::Result<SimHandle> {
    if config.api_keys.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "at least one API key is required",
        ));
    }
    let mut keys = config.api_keys.clone();
    keys.sort();
    keys.dedup();
    if keys.len() != config.api_keys.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "API keys must be distinct",
        ));
    }
    if !config.oauth_clients.is_empty() && config.dialect != Dialect::Generic {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "OAuth clients are served in the generic dialect only",
        ));
    }
    let mut clients: Vec<&str> = config
        .oauth_clients
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    clients.sort();
    clients.dedup();
    if clients.len() != config.oauth_clients.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "OAuth client ids must be distinct",
        ));
    }
    if config.instruments > MAX_INSTRUMENTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_INSTRUMENTS} instruments"),
        ));
    }
    if let Some(profile) = &config.faults {
        profile
            .validate(
                state::routes(config.dialect),
                state::stream_route(config.dialect),
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let tick_ms = config.tick_ms;
    let admin = config.admin_token.is_some();
    let app = Arc::new(AppState::new(config, stopped.clone()));
    let mut router = match app.config.dialect {
        Dialect::Generic => api::router(app.clone()),
        Dialect::Alpaca => alpaca::router(app.clone()),
    };
    if admin {
        router = router.merge(admin::router(app.clone()));
    }
    let mut tasks = vec![tokio::spawn(server::serve(
        listener,
        router,
        stopped.clone(),
    ))];
    if tick_ms > 0 {
        tasks.push(tokio::spawn(run_clock(app.clone(), tick_ms, stopped)));
    }
    tracing::info!(%addr, "broker-sim listening");
    Ok(SimHandle {
        addr,
        app,
        stop,
        tasks,
    })
}

/// Moves the market every `tick_ms`; skipped ticks are not made up, like a real feed.
async fn run_clock(app: Arc<AppState>, tick_ms: u64, stopped: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(tick_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => lock(&app.engine).step(state::now()),
            _ = state::stopped(stopped.clone()) => break,
        }
    }
}

/// A running simulator. The helpers act on the state directly, so they work without an
/// admin token (the embedded broker of `brokergraph serve` has none); each one is what
/// the matching `/sim/*` call does.
pub struct SimHandle {
    /// The bound address (the real port when `listen` had port 0).
    pub addr: SocketAddr,
    app: Arc<AppState>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, without `/v1`: what the gateway's `--broker-url` expects.
    pub fn base_url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    }

    /// The API key of the first account.
    pub fn api_key(&self) -> &str {
        &self.app.config.api_keys[0]
    }

    /// The REST API this simulator serves.
    pub fn dialect(&self) -> Dialect {
        self.app.config.dialect
    }

    pub fn config(&self) -> &SimConfig {
        &self.app.config
    }

    /// Exactly what `GET /sim/stats` answers.
    pub async fn stats(&self) -> Stats {
        self.app.stats()
    }

    /// As `POST /sim/faults`.
    ///
    /// # Panics
    /// If the profile is not valid (a test bug that should fail loudly).
    pub async fn set_faults(&self, profile: serde_json::Value) {
        let profile: FaultProfile = serde_json::from_value(profile)
            .unwrap_or_else(|e| panic!("invalid fault profile: {e}"));
        self.app
            .set_faults(profile)
            .unwrap_or_else(|e| panic!("invalid fault profile: {e}"));
    }

    /// As `DELETE /sim/faults`.
    pub async fn clear_faults(&self) {
        let _ = self.app.set_faults(FaultProfile::default());
    }

    /// As `POST /sim/reset`: back to the seeded initial state.
    pub async fn reset(&self) {
        self.app.reset();
    }

    /// As `POST /sim/prices`: sets the price and lets resting orders on that symbol fill.
    ///
    /// # Panics
    /// If the symbol is unknown or the price is not on its tick grid.
    pub async fn set_price(&self, symbol: &str, price: &str) {
        let price = rust_decimal::Decimal::from_str(price)
            .unwrap_or_else(|e| panic!("bad price {price:?}: {e}"));
        admin::apply_price(&self.app, symbol, price)
            .unwrap_or_else(|e| panic!("set_price({symbol}, {price}): {e}"));
    }

    /// The current price of `symbol`, as a decimal string.
    pub fn price(&self, symbol: &str) -> Option<String> {
        lock(&self.app.engine)
            .market
            .price(symbol)
            .map(|p| p.to_string())
    }

    /// As `POST /sim/tick`: advances the market clock by `n` steps right now.
    pub async fn tick(&self, n: u64) {
        let mut engine = lock(&self.app.engine);
        for _ in 0..n {
            engine.step(state::now());
        }
    }

    /// As `POST /sim/stream/drop`: closes every order stream connection now, without a
    /// closing handshake. Returns how many were open.
    pub async fn drop_streams(&self) -> u64 {
        self.app.streams.close_all(stream::CloseAll::Drop)
    }

    /// As `POST /sim/oauth/expire`: every access token issued so far expires now.
    pub async fn expire_tokens(&self) -> usize {
        lock(&self.app.oauth).expire_all()
    }

    /// As `POST /sim/close`: the simulated close; open `day` orders expire.
    pub async fn close_session(&self) {
        lock(&self.app.engine).close_session(state::now());
    }

    /// Stops accepting, cancels hung requests, and waits for in-flight ones.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
