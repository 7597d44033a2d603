//! brokergraph: a GraphQL gateway in front of a broker's REST API.
//!
//! Frontends and trading tools send GraphQL; brokergraph holds the broker
//! credentials, pages broker lists as Relay connections, and submits orders under
//! idempotency keys so that a retried mutation never places a second order. The
//! contract (names, codes, semantics) is `../shared/DESIGN.md`; `docs/` holds the
//! operator's view.
//!
//! # Layout
//!
//! Each layer knows only the layers beneath it (request flows top to bottom). Top
//! first; modules on one line are one layer and do not import each other
//! (`tests/project/layers.rs` reads this block and checks every file of `src/`):
//!
//! ```text
//! server telemetry
//! graphql
//! auth audit metrics
//! orders
//! cache
//! throttle
//! idempotency
//! shared
//! resilience
//! broker embedded
//! domain
//! config
//! cli
//! secret
//! ```
//!
//! - [`server`]: the axum HTTP server: routes (`/graphql`, `/healthz`, `/readyz`),
//!   gateway-key authentication, request ids, body limit, timeouts, shutdown.
//!   [`server::Gateway`] is what `main` and the tests start.
//!   Also the operator's surface: `/metrics`, per-key rate limits, CORS.
//! - [`auth`]: gateway API keys (SHA-256 hashes in the config) and their scopes.
//! - [`audit`]: the mutation audit log (target `audit`, optional JSON-lines file);
//!   [`metrics`]: the gateway's own counters behind `/metrics`.
//! - [`graphql`]: the schema of DESIGN.md §5: queries, mutations, Relay connections
//!   over broker cursors, global ids, the instrument DataLoader, and the one mapping
//!   of every error to `extensions.code`; query limits and persisted queries.
//! - [`orders`]: pre-trade validation and the submit/cancel flows that are safe to
//!   retry.
//! - [`cache`]: the read cache of DESIGN.md §7 as a `Broker` that wraps a `Broker`:
//!   per-resource moka caches keyed by account, single-flight, stale-on-error with
//!   `extensions.stale`, invalidation by mutations (and, with replicas, by other
//!   replicas' mutations: `cache::replicas`); with `throttle`, which spends the
//!   broker's rate-limit budget so its 429 is practically never reached (one budget
//!   for all replicas: `throttle::shared`).
//! - [`idempotency`]: the store that claims idempotency keys and replays outcomes:
//!   in memory for one process, in Redis (`RedisStore`) for several.
//! - [`shared`]: the Redis that replicas share (issue 10): one timeout-bounded
//!   handle with its health for `/readyz`, and the per-account epoch that tells
//!   replicas of each other's mutations. Absent without `redis.url`.
//! - [`resilience`]: retries with backoff and a retry budget, and the circuit
//!   breaker, as a `Broker` that wraps the adapter.
//! - [`broker`]: the `Broker` trait in domain types, `BrokerError`, and the adapters
//!   that speak a broker's REST dialect ([`broker::http`]: the generic v1 dialect;
//!   `broker::alpaca`: Alpaca's Trading API v2).
//! - [`domain`]: accounts, instruments, positions, orders: what every layer above the
//!   adapters speaks, with `Decimal` money.
//! - [`config`] and [`cli`]: the typed configuration (defaults < TOML < env < flags)
//!   and the command line.
//! - [`secret`]: strings that never print (broker and gateway keys).
//! - [`telemetry`]: tracing setup, text or JSON.
//! - `embedded` (feature `embedded-sim`): starts broker-sim in-process when no broker
//!   is configured, so `cargo run` trades on a paper broker over real HTTP.

pub mod audit;
pub mod auth;
pub mod broker;
pub mod cache;
pub mod cli;
pub mod config;
pub mod domain;
#[cfg(feature = "embedded-sim")]
mod embedded;
pub mod graphql;
pub mod idempotency;
pub mod metrics;
pub mod orders;
pub mod resilience;
pub mod secret;
pub mod server;
pub mod shared;
pub mod telemetry;
mod throttle;
