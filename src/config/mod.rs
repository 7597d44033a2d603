//! The gateway's one typed configuration (DESIGN.md §9), layered from lowest to
//! highest: built-in defaults, the TOML file (`--config` / `BROKERGRAPH_CONFIG`),
//! `BROKERGRAPH_*` environment variables, CLI flags.
//!
//! Everything is checked at load time, so a bad value stops the process with one
//! line naming the key and where it came from, instead of failing on first use.
//! Secrets are `Secret`s: `Debug` of any of these types is safe to log.

mod cache;
mod defaults;
mod hardening;
mod layers;
mod render;
mod scaleout;
mod settings;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::cli::Cli;
use crate::secret::Secret;

pub use cache::{CacheSettings, ThrottleSettings};
pub use hardening::{AuditSettings, LimitsSettings, PersistedQuerySettings, RateLimitSettings};
pub use layers::{Origin, Origins};
pub use render::to_redacted_toml;
pub use scaleout::RedisSettings;
pub use settings::{reference_table, unknown_env_vars};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[serde(deserialize_with = "validate::socket_addr")]
    pub listen: SocketAddr,
    pub broker: BrokerSettings,
    /// Gateway API keys; TOML only (`[[keys]]`), since a list does not fit a flag.
    pub keys: Vec<GatewayKeyConfig>,
    pub server: ServerSettings,
    pub graphql: GraphqlSettings,
    pub idempotency: IdempotencySettings,
    pub cache: CacheSettings,
    pub throttle: ThrottleSettings,
    /// The embedded paper broker, used when `broker.url` is unset.
    pub paper: PaperSettings,
    pub log: LogSettings,
    pub limits: LimitsSettings,
    pub rate_limit: RateLimitSettings,
    pub audit: AuditSettings,
    pub persisted_queries: PersistedQuerySettings,
    /// Shared state for several replicas; unset: everything stays in this process.
    pub redis: RedisSettings,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSettings {
    /// Which REST dialect the broker speaks (`--broker`).
    pub kind: BrokerKind,
    /// Base URL without `/v1` (`/v2` for Alpaca), e.g. `https://broker.example.com`.
    pub url: Option<String>,
    pub api_key: Option<Secret>,
    /// Alpaca's `APCA-API-KEY-ID`.
    pub key_id: Option<Secret>,
    /// Alpaca's `APCA-API-SECRET-KEY`.
    pub secret: Option<Secret>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// PEM certificates trusted besides the built-in roots: a broker (or a proxy in
    /// front of it) with a certificate from a private CA.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The broker's REST dialect, i.e. which adapter the gateway builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// The generic v1 dialect of DESIGN.md §3 (and broker-sim's default).
    #[default]
    Generic,
    /// Alpaca's Trading API v2, paper or live.
    Alpaca,
}

impl BrokerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Generic => "generic",
            BrokerKind::Alpaca => "alpaca",
        }
    }
}

/// One gateway API key. Only its SHA-256 is configured, so a leaked config file
/// does not leak the keys (`brokergraph hash-key` computes it).
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayKeyConfig {
    /// Names the key in logs; never the key itself.
    pub id: String,
    /// Lowercase hex SHA-256 of the key (64 characters; normalized at load).
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

/// Abbreviates the hash: enough to tell keys apart in `check-config` and logs, not
/// enough to feed a brute force of a weak key.
impl fmt::Debug for GatewayKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayKeyConfig")
            .field("id", &self.id)
            .field("sha256", &abbreviate_hash(&self.sha256))
            .field("scopes", &self.scopes)
            .finish()
    }
}

pub(crate) fn abbreviate_hash(hash: &str) -> String {
    let prefix: String = hash.chars().take(8).collect();
    format!("{prefix}…")
}

/// What a gateway key may do: `read` for queries, `trade` for order mutations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Trade,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Read, Scope::Trade];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Trade => "trade",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    /// Unset: on when `listen` is a loopback address, off when it is public.
    pub graphiql: Option<bool>,
    /// Unset: on when `listen` is a loopback address, off when it is public.
    pub introspection: Option<bool>,
    /// Browser origins allowed to call `/graphql` cross-origin; empty: none.
    #[serde(deserialize_with = "hardening::origins")]
    pub cors_origins: Vec<String>,
}

impl ServerSettings {
    /// GraphiQL and introspection help a developer on their machine and map the API
    /// for an attacker on a network, hence the default that follows `listen`.
    pub fn graphiql_on(&self, listen: SocketAddr) -> bool {
        self.graphiql.unwrap_or(listen.ip().is_loopback())
    }

    pub fn introspection_on(&self, listen: SocketAddr) -> bool {
        self.introspection.unwrap_or(listen.ip().is_loopback())
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlSettings {
    pub default_page_size: u32,
    pub max_page_size: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencySettings {
    pub ttl_secs: u64,
    pub max_entries: u64,
    /// How long a concurrent duplicate waits for the first request's result.
    pub wait_ms: u64,
    /// How long an in-flight submit holds its key if its owner never finishes (a
    /// crashed replica, a hung task); longer than `resend_deadline_ms`.
    pub lease_ms: u64,
    /// The most one submit spends resending with its key to learn an unknown outcome.
    pub resend_deadline_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperSettings {
    pub seed: u64,
    /// A decimal string: money is never a float.
    #[serde(deserialize_with = "validate::decimal_string")]
    pub cash: String,
    pub instruments: usize,
    pub positions: usize,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `EnvFilter` directives; `RUST_LOG` overrides them when set.
    pub filter: String,
    /// OTLP/HTTP collector base URL (`/v1/traces` is appended); unset: no export.
    /// Accepted by every build so one config file fits all, refused at validation
    /// by a build without the `otlp` feature rather than silently not exporting.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans, to tell deployments apart.
    pub otlp_service_name: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A configuration that cannot be served. `Display` is one line naming the key and
/// where its value came from, and never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("config key `{key}`{}: {message}", origin_suffix(.origin))]
    Invalid {
        key: String,
        origin: Origin,
        message: String,
    },
}

impl ConfigError {
    /// The dotted key at fault, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::File { .. } => None,
        }
    }
}

fn origin_suffix(origin: &Origin) -> String {
    match origin {
        Origin::Default => String::new(),
        other => format!(" (from {other})"),
    }
}

impl Config {
    /// Loads from the process environment and `cli`.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        Config::load_from(cli, &process_env())
    }

    /// Loads with an explicit environment, so tests need not mutate (and race on)
    /// the process environment.
    pub fn load_from(cli: &Cli, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        Config::load_with_origins(cli, env).map(|(config, _)| config)
    }

    /// Also returns where each key's value came from, for `check-config`.
    pub fn load_with_origins(
        cli: &Cli,
        env: &HashMap<String, String>,
    ) -> Result<(Config, Origins), ConfigError> {
        let (table, origins) = layers::collect(cli, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
                let key = match err.path().to_string() {
                    p if p == "." => "(root)".to_string(),
                    p => p,
                };
                let message = if settings::is_secret(&key) {
                    "must be a string".to_string()
                } else {
                    err.inner().message().replace('\n', " ")
                };
                invalid(&origins, key, message)
            })?;
        let config =
            validate::validate(config).map_err(|(key, message)| invalid(&origins, key, message))?;
        Ok((config, origins))
    }
}

fn invalid(origins: &Origins, key: String, message: String) -> ConfigError {
    ConfigError::Invalid {
        origin: origins.of(&key),
        key,
        message,
    }
}

/// The `BROKERGRAPH_*` part of the process environment (non-UTF-8 values are
/// converted lossily and then fail validation like any other bad value).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with(settings::ENV_PREFIX)
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}
