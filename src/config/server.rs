//! `[server]`: the gateway's own HTTP surface (body limit, timeouts, connection
//! cap, GraphiQL, introspection, CORS).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::check::{fail, positive, Check};
use super::duration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub body_limit_bytes: usize,
    #[serde(rename = "request_timeout_ms", deserialize_with = "duration::millis")]
    pub request_timeout: Duration,
    /// From a connection's accept, or from the first byte of its next request, to
    /// the end of the request's headers: bounds what a slow client (slowloris)
    /// holds while sending almost nothing.
    #[serde(
        rename = "header_read_timeout_ms",
        deserialize_with = "duration::millis"
    )]
    pub header_read_timeout: Duration,
    /// How long a connection may sit between requests (nothing in flight) before
    /// it is closed; also how long a response write may make no progress.
    #[serde(
        rename = "keep_alive_timeout_ms",
        deserialize_with = "duration::millis"
    )]
    pub keep_alive_timeout: Duration,
    /// From the request's headers to the last byte of its body, on `/graphql`.
    #[serde(rename = "body_read_timeout_ms", deserialize_with = "duration::millis")]
    pub body_read_timeout: Duration,
    /// Most TCP connections served at once. Unset: derived at start from the
    /// process's file limit (`server::listener::default_max_connections`), which is
    /// what a flood of connections would otherwise exhaust.
    pub max_connections: Option<usize>,
    /// Unset: on when `listen` is a loopback address, off when it is public.
    pub graphiql: Option<bool>,
    /// Unset: on when `listen` is a loopback address, off when it is public.
    pub introspection: Option<bool>,
    /// Browser origins allowed to call `/graphql` cross-origin; empty: none.
    #[serde(deserialize_with = "origins")]
    pub cors_origins: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_millis(30_000),
            header_read_timeout: Duration::from_millis(10_000),
            keep_alive_timeout: Duration::from_millis(60_000),
            body_read_timeout: Duration::from_millis(10_000),
            max_connections: None,
            graphiql: None,
            introspection: None,
            cors_origins: Vec::new(),
        }
    }
}

impl ServerSettings {
    /// GraphiQL and introspection help a developer on their machine and map the API
    /// for an attacker on a network, hence the default that follows `listen`.
    pub(crate) fn graphiql_on(&self, listen: SocketAddr) -> bool {
        self.graphiql.unwrap_or(listen.ip().is_loopback())
    }

    pub(crate) fn introspection_on(&self, listen: SocketAddr) -> bool {
        self.introspection.unwrap_or(listen.ip().is_loopback())
    }

    /// `authenticated`: with gateway keys or JWT sessions, origins must be listed
    /// rather than `*`, so that a credential held by one site is not usable from
    /// any other (and credentials may only be sent to listed origins).
    pub(crate) fn validate(&self, authenticated: bool) -> Check {
        positive(&[("server.body_limit_bytes", self.body_limit_bytes)])?;
        positive(&[
            ("server.request_timeout_ms", self.request_timeout),
            ("server.header_read_timeout_ms", self.header_read_timeout),
            ("server.keep_alive_timeout_ms", self.keep_alive_timeout),
            ("server.body_read_timeout_ms", self.body_read_timeout),
        ])?;
        if let Some(max) = self.max_connections {
            positive(&[("server.max_connections", max)])?;
        }
        for origin in &self.cors_origins {
            if origin == "*" && authenticated {
                fail(
                    "server.cors_origins",
                    "must list origins, not `*`, when gateway keys or [auth.jwt] are configured",
                )?;
            }
            if origin != "*"
                && reqwest::Url::parse(origin).map(|u| u.origin().is_tuple()) != Ok(true)
            {
                fail(
                    "server.cors_origins",
                    format!("must be origins such as https://app.example, got {origin:?}"),
                )?;
            }
        }
        Ok(())
    }
}

/// `server.cors_origins` as a TOML array or, for the environment, one string of
/// comma-separated origins (an env var holds no list).
fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let list = match Raw::deserialize(d).map_err(|_| {
        serde::de::Error::custom("must be a list of origins such as [\"https://app.example\"]")
    })? {
        Raw::List(list) => list,
        Raw::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    Ok(list
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect())
}
