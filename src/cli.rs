//! The command line: `brokergraph [serve|schema|check-config|hash-key]`, `serve`
//! being the default so that `cargo run --release` alone starts the gateway.
//!
//! The global flags are the highest config layer. They deliberately do not read
//! their environment variables through clap: the config loader does, so that it
//! knows which layer set a value and can say so in an error, and so that clap never
//! prints an environment value (the broker key) in help or errors.

use std::convert::Infallible;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::secret::Secret;

#[derive(Debug, Default, Parser)]
#[command(
    name = "brokergraph",
    version,
    about = "A GraphQL gateway in front of a broker's REST API",
    after_help = "Every setting can also be set in the TOML file or as BROKERGRAPH_<SECTION>_<KEY>; \
                  see docs/configuration.md. Precedence: defaults < file < environment < flags."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML config file [env: BROKERGRAPH_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to serve on, e.g. 127.0.0.1:8080 [env: BROKERGRAPH_LISTEN]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Broker base URL without /v1; unset: the embedded paper broker [env: BROKERGRAPH_BROKER_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub broker_url: Option<String>,

    /// Broker API key; prefer the environment variable, since flags are visible in
    /// the process list [env: BROKERGRAPH_BROKER_API_KEY]
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        value_parser = secret,
        allow_hyphen_values = true
    )]
    pub broker_api_key: Option<Secret>,

    /// Broker dialect: generic or alpaca [env: BROKERGRAPH_BROKER]
    #[arg(long, global = true, value_name = "KIND")]
    pub broker: Option<String>,

    /// Alpaca API key id [env: BROKERGRAPH_BROKER_KEY_ID]
    #[arg(
        long,
        global = true,
        value_name = "KEY_ID",
        value_parser = secret,
        allow_hyphen_values = true
    )]
    pub broker_key_id: Option<Secret>,

    /// Alpaca API secret key; prefer the environment variable [env: BROKERGRAPH_BROKER_SECRET]
    #[arg(
        long,
        global = true,
        value_name = "SECRET",
        value_parser = secret,
        allow_hyphen_values = true
    )]
    pub broker_secret: Option<Secret>,

    /// Redis shared by several replicas, e.g. redis://127.0.0.1:6379 [env: BROKERGRAPH_REDIS_URL]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        value_parser = secret,
        allow_hyphen_values = true
    )]
    pub redis_url: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the gateway (the default command)
    Serve,
    /// Print the GraphQL schema (SDL) to stdout
    Schema,
    /// Load and validate the configuration, print it with secrets redacted; exit 2 if invalid
    CheckConfig,
    /// Print the SHA-256 of a gateway API key, for `[[keys]] sha256 = ...`; reads the
    /// key from stdin unless given (an argument lands in shell history)
    HashKey {
        #[arg(value_name = "KEY", value_parser = secret, allow_hyphen_values = true)]
        key: Option<Secret>,
    },
    /// Exit 0 if the gateway configured here answers `GET /healthz` with 200 within
    /// 3 s, else 1: the container's HEALTHCHECK, which needs no curl in the image
    Healthcheck,
}

impl Cli {
    /// The command to run; `serve` when none was given.
    pub fn command(&self) -> Command {
        self.command.clone().unwrap_or(Command::Serve)
    }
}

/// Wraps a flag value in `Secret` at once, so `Debug` of `Cli` is safe. It cannot
/// fail, so clap has no error message in which to echo the value.
fn secret(value: &str) -> Result<Secret, Infallible> {
    Ok(Secret::new(value))
}
