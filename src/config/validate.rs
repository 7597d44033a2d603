//! Checks that need more than a type: ranges, cross-field rules and the DESIGN.md §9
//! rule that a gateway without keys only listens on loopback. Each failure is
//! `(dotted key, message)`; values are echoed except secrets and URLs (which may
//! carry credentials).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use super::{Config, Scope};

pub(super) type Check = Result<(), (String, String)>;

pub(super) fn fail(key: impl Into<String>, message: impl Into<String>) -> Check {
    Err((key.into(), message.into()))
}

/// `listen` with a message that says what is expected (a hostname is not accepted:
/// resolving it would make the loopback check meaningless).
pub(super) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let raw = String::deserialize(d)?;
    raw.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "must be an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got {raw:?}"
        ))
    })
}

/// Money as a decimal string; a TOML integer is accepted too, a float is refused.
pub(super) fn decimal_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Whole(i64),
    }
    let text = match Raw::deserialize(d)
        .map_err(|_| serde::de::Error::custom("must be a decimal string such as \"1000000.00\""))?
    {
        Raw::Text(t) => t,
        Raw::Whole(n) => n.to_string(),
    };
    match Decimal::from_str(text.trim()) {
        Ok(value) if value > Decimal::ZERO => Ok(text.trim().to_string()),
        _ => Err(serde::de::Error::custom(format!(
            "must be a positive decimal such as \"1000000.00\", got {text:?}"
        ))),
    }
}

pub(super) fn validate(mut config: Config) -> Result<Config, (String, String)> {
    broker(&mut config)?;
    positive(&[
        (
            "broker.connect_timeout_ms",
            config.broker.connect_timeout_ms,
        ),
        (
            "broker.request_timeout_ms",
            config.broker.request_timeout_ms,
        ),
        (
            "server.body_limit_bytes",
            config.server.body_limit_bytes as u64,
        ),
        (
            "server.request_timeout_ms",
            config.server.request_timeout_ms,
        ),
        ("idempotency.ttl_secs", config.idempotency.ttl_secs),
        ("idempotency.max_entries", config.idempotency.max_entries),
        ("paper.instruments", config.paper.instruments as u64),
    ])?;
    pages(&config)?;
    super::cache::validate(&config.cache, &config.throttle)?;
    if config.paper.positions > config.paper.instruments {
        fail(
            "paper.positions",
            format!(
                "must not exceed paper.instruments ({}), got {}",
                config.paper.instruments, config.paper.positions
            ),
        )?;
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&config.log.filter) {
        fail("log.filter", format!("is not a valid filter: {e}"))?;
    }
    otlp(&config.log)?;
    keys(&mut config)?;
    listen(&config)?;
    super::hardening::validate(&config)?;
    super::scaleout::validate(&config)?;
    Ok(config)
}

/// A build without the exporter refuses the endpoint: an operator who asked for
/// traces would otherwise see none and no reason why.
fn otlp(log: &super::LogSettings) -> Check {
    let Some(endpoint) = &log.otlp_endpoint else {
        return Ok(());
    };
    if !cfg!(feature = "otlp") {
        fail(
            "log.otlp_endpoint",
            "needs a brokergraph built with `--features otlp` (this build cannot export traces)",
        )?;
    }
    let endpoint = endpoint.trim();
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        fail(
            "log.otlp_endpoint",
            "must be an http:// or https:// URL such as http://otel-collector:4318",
        )?;
    }
    if log.otlp_service_name.trim().is_empty() {
        fail("log.otlp_service_name", "must not be empty")?;
    }
    Ok(())
}

fn positive(values: &[(&str, u64)]) -> Check {
    for &(key, value) in values {
        if value == 0 {
            fail(key, "must be greater than 0, got 0")?;
        }
    }
    Ok(())
}

fn pages(config: &Config) -> Check {
    const MAX: u32 = 500;
    let g = &config.graphql;
    for (key, value) in [
        ("graphql.default_page_size", g.default_page_size),
        ("graphql.max_page_size", g.max_page_size),
    ] {
        if !(1..=MAX).contains(&value) {
            fail(key, format!("must be between 1 and {MAX}, got {value}"))?;
        }
    }
    if g.default_page_size > g.max_page_size {
        fail(
            "graphql.default_page_size",
            format!(
                "must not exceed graphql.max_page_size ({}), got {}",
                g.max_page_size, g.default_page_size
            ),
        )?;
    }
    Ok(())
}

/// Same rules as the HTTP adapter's, checked here so they fail at startup with the
/// key's name.
fn broker(config: &mut Config) -> Check {
    let b = &mut config.broker;
    if let Some(url) = &b.url {
        let url = url.trim().to_string();
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| ("broker.url".to_string(), format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            fail("broker.url", "must be an http:// or https:// URL")?;
        }
        if parsed.cannot_be_a_base() || parsed.host().is_none() {
            fail("broker.url", "must have a host")?;
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            fail(
                "broker.url",
                "must not contain credentials; set broker.api_key instead",
            )?;
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            fail("broker.url", "must not have a query or fragment")?;
        }
        if parsed.path().trim_end_matches('/').ends_with("/v1")
            || parsed.path().trim_end_matches('/').ends_with("/v2")
        {
            fail(
                "broker.url",
                "must be the base URL without /v1 or /v2 (e.g. https://broker.example.com)",
            )?;
        }
        b.url = Some(url);
    }
    if let Some(path) = &b.ca_file {
        crate::broker::transport::load_roots(path)
            .map_err(|e| ("broker.ca_file".to_string(), e))?;
    }
    if b.kind == super::BrokerKind::Alpaca {
        return alpaca(b);
    }
    for (key, value) in [("broker.key_id", &b.key_id), ("broker.secret", &b.secret)] {
        if value.is_some() {
            fail(
                key,
                "is for broker.kind = \"alpaca\"; the generic broker uses broker.api_key",
            )?;
        }
    }
    match (&b.url, &b.api_key) {
        (Some(_), None) => fail("broker.api_key", "is required when broker.url is set")?,
        (None, Some(_)) => fail(
            "broker.url",
            "is required when broker.api_key is set (without it the key would be ignored \
             and brokergraph would trade on the embedded paper broker)",
        )?,
        (_, Some(key)) if key.expose().trim().is_empty() => {
            fail("broker.api_key", "must not be empty")?
        }
        _ => {}
    }
    Ok(())
}

/// Alpaca authenticates with a key id and a secret, both or neither. With them and
/// no URL, the paper endpoint: live trading is only ever an explicit URL. With
/// neither and no URL, the embedded paper broker in the Alpaca dialect.
fn alpaca(b: &mut super::BrokerSettings) -> Check {
    if b.api_key.is_some() {
        fail(
            "broker.api_key",
            "is for the generic broker; Alpaca uses broker.key_id and broker.secret",
        )?;
    }
    match (&b.key_id, &b.secret) {
        (Some(_), None) => fail("broker.secret", "is required with broker.key_id")?,
        (None, Some(_)) => fail("broker.key_id", "is required with broker.secret")?,
        (Some(id), Some(secret)) => {
            if id.expose().trim().is_empty() {
                fail("broker.key_id", "must not be empty")?;
            }
            if secret.expose().trim().is_empty() {
                fail("broker.secret", "must not be empty")?;
            }
            if b.url.is_none() {
                b.url = Some(crate::broker::alpaca::PAPER_URL.to_owned());
            }
        }
        (None, None) if b.url.is_some() => fail(
            "broker.key_id",
            "is required when broker.url is set (with broker.secret)",
        )?,
        (None, None) => {}
    }
    Ok(())
}

fn keys(config: &mut Config) -> Check {
    let mut ids = HashSet::new();
    let mut hashes = HashSet::new();
    for (i, key) in config.keys.iter_mut().enumerate() {
        let at = |field: &str| format!("keys[{i}].{field}");
        key.id = key.id.trim().to_string();
        if key.id.is_empty() {
            fail(at("id"), "must not be empty")?;
        }
        if !ids.insert(key.id.clone()) {
            fail(at("id"), format!("duplicate key id {:?}", key.id))?;
        }
        key.sha256 = key.sha256.trim().to_ascii_lowercase();
        if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            fail(
                at("sha256"),
                format!(
                    "must be 64 hex characters (the output of `brokergraph hash-key`), got {} characters",
                    key.sha256.chars().count()
                ),
            )?;
        }
        if !hashes.insert(key.sha256.clone()) {
            fail(at("sha256"), "the same key is configured twice")?;
        }
        key.scopes = Scope::ALL
            .into_iter()
            .filter(|s| key.scopes.contains(s))
            .collect();
        if key.scopes.is_empty() {
            fail(
                at("scopes"),
                "must list at least one of \"read\", \"trade\"",
            )?;
        }
    }
    Ok(())
}

/// DESIGN.md §9: without keys every caller may trade, so only local callers may call.
fn listen(config: &Config) -> Check {
    let ip = config.listen.ip().to_canonical();
    if config.keys.is_empty() && !ip.is_loopback() {
        fail(
            "listen",
            format!(
                "{} is not a loopback address, and gateway API keys are required to listen on it: \
                 add [[keys]] to the config file (see `brokergraph hash-key`) or listen on 127.0.0.1",
                config.listen
            ),
        )?;
    }
    Ok(())
}
