//! The gateway's one typed configuration (docs/configuration.md), layered from
//! lowest to highest: built-in defaults, the TOML file (`--config` /
//! `BROKERGRAPH_CONFIG`), `BROKERGRAPH_*` environment variables, CLI flags.
//!
//! Everything is checked at load time, so a bad value stops the process with one
//! line naming the key and where it came from, instead of failing on first use.
//! Secrets are `Secret`s: `Debug` of any of these types is safe to log.
//!
//! One file per `[section]`, each with its struct, its defaults and its checks, so
//! that a setting is read and changed in one place; this file assembles them and
//! checks the rules that span sections. Dependencies point one way: sections use
//! only the helpers `check` and `duration` (and `rate_limit` the `keys` it names),
//! and only `render` refers back to `Config`.

mod accounts;
mod admin;
mod audit;
mod auth;
mod broker;
mod cache;
mod check;
mod duration;
mod error;
mod graphql;
mod idempotency;
mod keys;
mod layers;
mod limits;
mod log;
mod oauth;
mod orders;
mod origin;
mod paper;
mod persisted_queries;
mod rate_limit;
mod redis;
mod reference;
mod render;
mod server;
mod subscriptions;
mod throttle;
mod token_store;

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::cli::Cli;

pub(crate) use accounts::check_linked;
pub use accounts::{Account, AccountConfig, Credentials, OAuthConfig, DEFAULT_ACCOUNT};
pub use admin::AdminSettings;
pub use audit::AuditSettings;
pub use auth::{AuthSettings, JwtSettings};
pub use broker::{BrokerKind, BrokerSettings};
pub use cache::CacheSettings;
pub use error::ConfigError;
pub use graphql::GraphqlSettings;
pub use idempotency::IdempotencySettings;
pub use keys::{GatewayKeyConfig, Scope};
pub use limits::LimitsSettings;
pub use log::{LogFormat, LogSettings};
pub use oauth::OAuthSettings;
pub use orders::OrderCheckSettings;
pub use origin::{Origin, Origins};
pub use paper::PaperSettings;
pub use persisted_queries::PersistedQuerySettings;
pub use rate_limit::RateLimitSettings;
pub use redis::RedisSettings;
pub use reference::unknown_env_vars;
pub use render::{reference_table, to_redacted_toml};
pub use server::ServerSettings;
pub use subscriptions::SubscriptionSettings;
pub use throttle::ThrottleSettings;
pub use token_store::TokenStoreSettings;

use check::{fail, Check};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[serde(deserialize_with = "check::socket_addr")]
    pub listen: SocketAddr,
    pub broker: BrokerSettings,
    /// More broker accounts besides `default` (`broker.*`); TOML only (`[[accounts]]`).
    pub accounts: Vec<AccountConfig>,
    /// Gateway API keys; TOML only (`[[keys]]`), since a list does not fit a flag.
    pub keys: Vec<GatewayKeyConfig>,
    /// Callers besides gateway keys: JWT sessions (`[auth.jwt]`).
    pub auth: AuthSettings,
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
    /// GraphQL subscriptions: their transports and the broker streams behind them.
    pub subscriptions: SubscriptionSettings,
    /// OAuth accounts' token refresh.
    pub oauth: OAuthSettings,
    /// Where OAuth tokens are kept, encrypted.
    pub token_store: TokenStoreSettings,
    /// Pre-trade checks that read the market (the price collar).
    pub orders: OrderCheckSettings,
    /// The admin API (accounts linked at run time).
    pub admin: AdminSettings,
}

/// What a fresh clone runs with: loopback, the embedded paper broker, GraphiQL on
/// because loopback.
impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            broker: BrokerSettings::default(),
            accounts: Vec::new(),
            keys: Vec::new(),
            auth: AuthSettings::default(),
            server: ServerSettings::default(),
            graphql: GraphqlSettings::default(),
            idempotency: IdempotencySettings::default(),
            cache: CacheSettings::default(),
            throttle: ThrottleSettings::default(),
            paper: PaperSettings::default(),
            log: LogSettings::default(),
            limits: LimitsSettings::default(),
            rate_limit: RateLimitSettings::default(),
            audit: AuditSettings::default(),
            persisted_queries: PersistedQuerySettings::default(),
            redis: RedisSettings::default(),
            subscriptions: SubscriptionSettings::default(),
            oauth: OAuthSettings::default(),
            token_store: TokenStoreSettings::default(),
            orders: OrderCheckSettings::default(),
            admin: AdminSettings::default(),
        }
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
        let invalid = |key: String, message: String| ConfigError::Invalid {
            origin: origins.of(&key),
            key,
            message,
        };
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|err| {
                let key = match err.path().to_string() {
                    p if p == "." => "(root)".to_string(),
                    p => p,
                };
                // serde's message may quote the value, and a secret must not be.
                let message = if reference::is_secret(&key) {
                    "must be a string".to_string()
                } else {
                    err.inner().message().replace('\n', " ")
                };
                invalid(key, message)
            })?;
        config
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        Ok((config, origins))
    }

    /// Each section's checks, then the rules that span sections. Normalizes as it
    /// goes (trimmed URL and key ids, lowercase key hashes), so the keys are checked
    /// before the sections that refer to them.
    fn validate(&mut self) -> Check {
        self.broker.validate()?;
        self.auth.validate()?;
        self.server.validate(self.callers_authenticate())?;
        self.idempotency.validate()?;
        self.paper.validate()?;
        self.graphql.validate()?;
        self.cache.validate()?;
        self.throttle.validate()?;
        self.log.validate()?;
        let accounts = accounts::resolve(&mut self.accounts, &self.broker)?;
        let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
        if !self.callers_authenticate() && !ids.contains(&DEFAULT_ACCOUNT) {
            fail(
                "keys",
                "without [[keys]] every caller uses the account \"default\", which is not configured: \
                 set broker.url or add [[keys]] naming an account",
            )?;
        }
        keys::validate(&mut self.keys, &ids)?;
        self.oauth.validate()?;
        let oauth = accounts
            .iter()
            .any(|a| matches!(a.credentials, Some(Credentials::OAuth(_))));
        self.token_store.validate(oauth)?;
        self.admin.validate(self.token_store.key.is_some())?;
        self.validate_listen()?;
        self.limits.validate()?;
        self.persisted_queries.validate()?;
        self.rate_limit.validate(&self.keys)?;
        self.redis.validate()?;
        self.subscriptions.validate()?;
        self.orders.validate()
    }

    /// Every account this gateway fronts, `default` (from `broker.*`) first when
    /// there is one. Checked at load; a config built by hand is checked here.
    pub fn accounts(&self) -> Result<Vec<Account>, ConfigError> {
        let mut entries = self.accounts.clone();
        accounts::resolve(&mut entries, &self.broker).map_err(|(key, message)| {
            ConfigError::Invalid {
                origin: Origin::Default,
                key,
                message,
            }
        })
    }

    /// Whether callers must present a credential (a gateway key or a JWT); without
    /// either, every caller is anonymous with every scope.
    pub(crate) fn callers_authenticate(&self) -> bool {
        !self.keys.is_empty() || self.auth.jwt_configured()
    }

    /// Without keys every caller may trade, so only local callers may call.
    fn validate_listen(&self) -> Check {
        let ip = self.listen.ip().to_canonical();
        if !self.callers_authenticate() && !ip.is_loopback() {
            fail(
                "listen",
                format!(
                    "{} is not a loopback address, and gateway API keys are required to listen on it: \
                     add [[keys]] to the config file (see `brokergraph hash-key`) or listen on 127.0.0.1",
                    self.listen
                ),
            )?;
        }
        Ok(())
    }
}

/// The `BROKERGRAPH_*` part of the process environment (non-UTF-8 values are
/// converted lossily and then fail validation like any other bad value).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with(reference::ENV_PREFIX)
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}
