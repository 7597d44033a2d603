pub mod auth;
pub mod broker;
pub mod cli;
pub mod config;
pub mod domain;
#[cfg(feature = "embedded-sim")]
mod embedded;
pub mod graphql;
pub mod idempotency;
pub mod orders;
pub mod secret;
pub mod server;
pub mod telemetry;
