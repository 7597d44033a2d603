//! brokergraph: a GraphQL gateway in front of a broker's REST API.
//!
//! Frontends and trading tools send GraphQL; brokergraph holds the broker
//! credentials, pages broker lists as Relay connections, and submits orders under
//! idempotency keys so that a retried mutation never places a second order.
//! `docs/architecture.md` walks through the layers, the path of a query and of a
//! submit, where state lives and which code keeps each invariant; the rest of
//! `docs/` is the operator's and the client's view.
//!
//! # Layout
//!
//! Each layer knows only the layers beneath it (a request flows top to bottom).
//! Top first; modules on one line are one layer and do not import each other.
//! `tests/project/layers.rs` reads this block and fails when a file of `src/`
//! imports a module on its own line or above, or when files import each other in a
//! cycle:
//!
//! ```text
//! server
//! services
//! graphql
//! auth audit
//! orders streams
//! cache
//! throttle
//! idempotency resilience metrics
//! request
//! tokens
//! cluster
//! telemetry embedded
//! config
//! broker cli
//! domain secret trace
//! ```
//!
//! - [`server`]: HTTP only: routes (`/graphql`, `/healthz`, `/readyz`, `/metrics`,
//!   GraphiQL, the admin API), the gateway-key header, request ids, body limit, per-key rate
//!   limits, CORS, timeouts, shutdown; the accept loop with the connection cap and
//!   the header, keep-alive and body timeouts; the subscription transports (GraphQL
//!   over WebSocket and over SSE). [`server::Gateway`] is what `main` and the
//!   tests start; it serves what `services` built.
//! - `services`: start-up, the one place that knows every layer: builds the adapter
//!   (or the embedded paper broker), stacks the broker wrappers, the cache, the
//!   order service and the schema, and derives every per-account name from one
//!   `AccountIdentity`; the `AccountRegistry` of the accounts at run time (those
//!   linked through the admin API too).
//! - [`graphql`]: the schema (queries, mutations, Relay connections over broker
//!   cursors, global ids, the instrument DataLoader), query limits and persisted
//!   queries; `graphql::Executor` runs one request (replica sync, the whole-response
//!   cache, the request scope, `extensions.stale`); the one mapping of every error
//!   to an `extensions.code` (`graphql::ErrorCode`).
//! - [`auth`]: gateway API keys (SHA-256 hashes in the config) and JWT sessions
//!   from the frontend's identity provider, each a principal with an account and
//!   scopes;
//!   `audit`: the mutation audit log (target `audit`, optional JSON-lines file).
//! - `orders`: pre-trade validation, the submit/cancel flows that are safe to
//!   retry, their one resend deadline (`orders::resend`), the `userErrors` codes.
//! - `streams`: live order events: one upstream stream per broker account, fanned
//!   out to subscribers, reconciled over REST after every gap, invalidating the
//!   caches before each event is published; and live quotes (`QuoteHub`): the
//!   union of every subscriber's symbols on one upstream stream, within the
//!   broker's symbol limit, the latest quote per symbol. With replicas one of them
//!   holds the upstream (a Redis lease) and the others follow it through Redis
//!   (`streams::relay`, `quotes::shared`).
//! - [`cache`]: the read cache as a `Broker` that wraps a `Broker`: per-resource
//!   moka caches keyed by account, single-flight, stale-on-error, invalidation by
//!   mutations (and by other replicas' mutations: `cache::replicas`), and the L2
//!   cache replicas share in Redis (`cache::l2`).
//! - `throttle`: spends the broker's rate-limit budget so its 429 is practically
//!   never reached; one budget for all replicas through Redis
//!   (`throttle::cluster_budget`).
//! - [`idempotency`]: the store that claims idempotency keys and replays outcomes,
//!   in memory for one process, in Redis for several; [`resilience`]: retries with
//!   backoff, a retry budget and the circuit breaker, as a `broker::CallLayer`;
//!   `metrics`: the gateway's registry (prometheus-client), where each module
//!   registers its own metrics, and `metrics::Meter`, the `CallLayer` that counts
//!   and times every broker attempt.
//! - `request`: what one request carries to layers that never see it as an
//!   argument (stale values served, freshness, a mutation's read priority).
//! - `tokens`: OAuth 2.0 access tokens of the accounts that have them, refreshed
//!   ahead of expiry, one refresh at a time per account (across replicas too), kept
//!   encrypted in the token store; handed to the adapters as a
//!   `broker::transport::BearerSource`.
//! - `trace`: the request's W3C trace context (the client's `traceparent` or a new
//!   trace), which logs, errors and every broker call of the request carry.
//! - [`cluster`]: the Redis that replicas share: one timeout-bounded handle with
//!   its health for `/readyz`, the per-account epoch that tells replicas of each
//!   other's mutations, what streams need to be shared (a lease, a capped event
//!   log in a Redis Stream, the quote symbols of every replica), and how many
//!   replicas are alive (`cluster::members`, what a per-key limit is divided by
//!   while Redis is down). Absent without `redis.url`.
//! - [`telemetry`]: tracing setup, text or JSON (and OTLP with the `otlp` feature);
//!   `embedded` (feature `embedded-sim`): broker-sim in-process when no broker is
//!   configured, so `cargo run` trades on a paper broker over real HTTP.
//! - [`config`]: the typed configuration (defaults < TOML < env < flags), one file
//!   per section, checked at load.
//! - [`broker`]: the `Broker` trait in domain types, `broker::Route` (the one name
//!   of an operation in metrics, logs and stats), `Layered<L: CallLayer>` for the
//!   wrappers, `BrokerError`, and the adapters: `broker::generic` (the generic v1
//!   dialect) and `broker::alpaca` (Alpaca's Trading API v2) over
//!   `broker::transport`; [`cli`]: the command line.
//! - [`domain`]: accounts, instruments, positions, orders, with `Decimal` money;
//!   [`secret`]: strings that never print (broker and gateway keys).
//!
//! Public are the modules `main`, the `tools/` binaries, the benches and the tests
//! use; everything else is `pub(crate)`, which `unreachable_pub` enforces.

#![warn(unreachable_pub)]

mod audit;
pub mod auth;
pub mod broker;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod domain;
#[cfg(feature = "embedded-sim")]
mod embedded;
pub mod graphql;
pub mod idempotency;
mod metrics;
mod orders;
mod request;
pub mod resilience;
pub mod secret;
pub mod server;
mod services;
mod streams;
pub mod telemetry;
mod throttle;
mod tokens;
mod trace;
