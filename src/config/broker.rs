//! `[broker]`: which broker the gateway trades on and how it authenticates there.
//! Unset `broker.url` means the embedded paper broker, so a fresh clone runs
//! without credentials.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;
use crate::secret::Secret;

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
    #[serde(rename = "connect_timeout_ms", deserialize_with = "duration::millis")]
    pub connect_timeout: Duration,
    #[serde(rename = "request_timeout_ms", deserialize_with = "duration::millis")]
    pub request_timeout: Duration,
    /// PEM certificates trusted besides the built-in roots: a broker (or a proxy in
    /// front of it) with a certificate from a private CA.
    pub ca_file: Option<PathBuf>,
    /// Alpaca's market-data REST host. Unset: Alpaca's own beside Alpaca's trading
    /// hosts, else `url` (a paper broker serves both).
    pub data_url: Option<String>,
    /// Alpaca's market-data stream host (`wss://…`); the feed is its path. Unset:
    /// as `data_url`.
    pub data_stream_url: Option<String>,
    /// Alpaca's equity feed for quotes.
    pub feed: crate::broker::alpaca::Feed,
    /// The most quote symbols the broker streams at once per credential; a
    /// `quotes` subscription that would go beyond it is refused.
    pub quote_symbol_limit: usize,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            kind: BrokerKind::Generic,
            url: None,
            api_key: None,
            key_id: None,
            secret: None,
            connect_timeout: Duration::from_millis(2_000),
            request_timeout: Duration::from_millis(10_000),
            ca_file: None,
            data_url: None,
            data_stream_url: None,
            feed: crate::broker::alpaca::Feed::Iex,
            quote_symbol_limit: 30,
        }
    }
}

/// The broker's REST dialect, i.e. which adapter the gateway builds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerKind {
    /// The generic v1 REST dialect, which broker-sim serves by default
    /// (docs/brokers.md).
    #[default]
    Generic,
    /// Alpaca's Trading API v2, paper or live.
    Alpaca,
}

impl BrokerKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BrokerKind::Generic => "generic",
            BrokerKind::Alpaca => "alpaca",
        }
    }
}

impl BrokerSettings {
    /// Same URL rules as the HTTP adapter's, checked here so they fail at startup
    /// with the key's name. Normalizes `url` (trimmed; Alpaca's paper URL when only
    /// Alpaca credentials are given).
    pub(crate) fn validate(&mut self) -> Check {
        if let Some(url) = &self.url {
            self.url = Some(check_url(url)?);
        }
        if let Some(path) = &self.ca_file {
            crate::broker::transport::load_roots(path)
                .map_err(|e| ("broker.ca_file".to_string(), e))?;
        }
        for (key, url) in [
            ("broker.data_url", &self.data_url),
            ("broker.data_stream_url", &self.data_stream_url),
        ] {
            if url.is_some() && self.kind != BrokerKind::Alpaca {
                fail(key, "is for broker.kind = \"alpaca\"; the generic broker streams quotes on its own stream")?;
            }
        }
        if self.quote_symbol_limit == 0 {
            fail("broker.quote_symbol_limit", "must be at least 1")?;
        }
        match self.kind {
            BrokerKind::Alpaca => self.alpaca_credentials()?,
            BrokerKind::Generic => self.generic_credentials()?,
        }
        positive(&[
            ("broker.connect_timeout_ms", self.connect_timeout),
            ("broker.request_timeout_ms", self.request_timeout),
        ])
    }

    fn generic_credentials(&self) -> Check {
        for (key, value) in [
            ("broker.key_id", &self.key_id),
            ("broker.secret", &self.secret),
        ] {
            if value.is_some() {
                fail(
                    key,
                    "is for broker.kind = \"alpaca\"; the generic broker uses broker.api_key",
                )?;
            }
        }
        match (&self.url, &self.api_key) {
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

    /// Alpaca authenticates with a key id and a secret, both or neither. With them
    /// and no URL, the paper endpoint: live trading is only ever an explicit URL.
    /// With neither and no URL, the embedded paper broker in the Alpaca dialect.
    fn alpaca_credentials(&mut self) -> Check {
        if self.api_key.is_some() {
            fail(
                "broker.api_key",
                "is for the generic broker; Alpaca uses broker.key_id and broker.secret",
            )?;
        }
        match (&self.key_id, &self.secret) {
            (Some(_), None) => fail("broker.secret", "is required with broker.key_id")?,
            (None, Some(_)) => fail("broker.key_id", "is required with broker.secret")?,
            (Some(id), Some(secret)) => {
                if id.expose().trim().is_empty() {
                    fail("broker.key_id", "must not be empty")?;
                }
                if secret.expose().trim().is_empty() {
                    fail("broker.secret", "must not be empty")?;
                }
                if self.url.is_none() {
                    self.url = Some(crate::broker::alpaca::PAPER_URL.to_owned());
                }
            }
            (None, None) if self.url.is_some() => fail(
                "broker.key_id",
                "is required when broker.url is set (with broker.secret)",
            )?,
            (None, None) => {}
        }
        Ok(())
    }
}

/// The trimmed URL, or why it cannot be a broker's base URL. Never echoes the URL:
/// it may carry credentials.
pub(super) fn check_url(url: &str) -> Result<String, (String, String)> {
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
    let path = parsed.path().trim_end_matches('/');
    if path.ends_with("/v1") || path.ends_with("/v2") {
        fail(
            "broker.url",
            "must be the base URL without /v1 or /v2 (e.g. https://broker.example.com)",
        )?;
    }
    Ok(url)
}
