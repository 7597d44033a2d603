//! Configuration shared by the library (`spawn`) and the CLI.

use std::net::SocketAddr;

use rust_decimal::Decimal;

use crate::faults::FaultProfile;

/// Which broker REST API the simulator speaks. Both serve the same engine, so
/// fills, faults, stats and rate limits are identical whichever is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// brokergraph's generic v1 API (README.md, "The v1 API"), bearer auth.
    #[default]
    Generic,
    /// Alpaca's Trading API v2 routes and JSON, `APCA-API-*` headers.
    Alpaca,
}

/// Everything needed to start a simulator. Construct with `..Default::default()` so that
/// new knobs can be added without breaking callers.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to bind; port 0 picks a free port (the bound address is in `SimHandle::addr`).
    pub listen: SocketAddr,
    /// One paper account per key, in this order.
    pub api_keys: Vec<String>,
    /// Token for `/sim/*`; `None` hides the control plane entirely (404).
    pub admin_token: Option<String>,
    /// Seeds the universe, the price walk, ids and the default fault RNG.
    pub seed: u64,
    /// Starting cash of every account.
    pub cash: Decimal,
    /// Number of synthetic instruments.
    pub instruments: usize,
    /// Starting positions per account, bought at the initial price before serving.
    pub positions: usize,
    /// Requests per window per API key.
    pub rate_limit: u32,
    /// Length of the fixed rate-limit window.
    pub rate_window_secs: u64,
    /// Market clock step in milliseconds; 0 stops the clock (advance it with
    /// `SimHandle::tick`), which makes a run fully repeatable.
    pub tick_ms: u64,
    /// Market ticks per simulated session; `day` orders expire when a session closes.
    /// The default is 6.5 h at the default 250 ms tick, so a test run never sees a close
    /// unless it asks for one.
    pub session_ticks: u64,
    /// Terminal (filled, canceled, rejected, expired) orders kept per account; the oldest
    /// are pruned beyond this.
    pub max_closed_orders: usize,
    /// Idempotency keys kept per account (besides the 24 h age limit).
    pub max_idempotency_keys: usize,
    /// Initial fault profile, as the body of `POST /sim/faults`.
    pub faults: Option<FaultProfile>,
    /// How often a stream connection is pinged; 0 never pings.
    pub stream_ping_ms: u64,
    /// The REST API served. In the Alpaca dialect an account's key is both its
    /// `APCA-API-KEY-ID` and its `APCA-API-SECRET-KEY`.
    pub dialect: Dialect,
    /// Whether a sell may go beyond the position into a short. Off by default, as at a
    /// cash account: selling more than held is then refused.
    pub shorting: bool,
    /// Quotes sent per second per subscribed symbol on a stream; 0 sends none (REST
    /// snapshots still work).
    pub quote_hz: u32,
    /// Quote symbols one stream connection may hold, as brokers cap them per plan.
    pub stream_symbol_limit: usize,
    /// OAuth 2.0 clients `(id, secret)` of `POST /oauth/token`, one paper account each,
    /// after the API keys' accounts (generic dialect only).
    pub oauth_clients: Vec<(String, String)>,
    /// Lifetime of an access token from `/oauth/token`.
    pub token_ttl_secs: u64,
}

impl SimConfig {
    /// Paper accounts: one per API key, then one per OAuth client.
    pub(crate) fn account_count(&self) -> usize {
        self.api_keys.len() + self.oauth_clients.len()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_keys: vec!["sim-key".into()],
            admin_token: None,
            seed: 42,
            cash: Decimal::new(100_000_000, 2),
            instruments: 2000,
            positions: 0,
            rate_limit: 200,
            rate_window_secs: 60,
            tick_ms: 250,
            session_ticks: 93_600,
            max_closed_orders: 20_000,
            max_idempotency_keys: 20_000,
            faults: None,
            stream_ping_ms: 10_000,
            dialect: Dialect::Generic,
            shorting: false,
            quote_hz: 2,
            stream_symbol_limit: 30,
            oauth_clients: Vec::new(),
            token_ttl_secs: 900,
        }
    }
}
