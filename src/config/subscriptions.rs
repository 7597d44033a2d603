//! `[subscriptions]`: GraphQL subscriptions over WebSocket (graphql-transport-ws and
//! the legacy graphql-ws) and SSE, and the broker streams that feed them
//! (docs/configuration.md).

use std::time::Duration;

use serde::Deserialize;

use super::check::{fail, positive, Check};
use super::duration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Off: a WebSocket upgrade of `/graphql` and an SSE request are refused.
    pub enabled: bool,
    /// How long a broker stream stays open after its last subscriber left.
    #[serde(rename = "linger_ms", deserialize_with = "duration::millis")]
    pub linger: Duration,
    /// How long a new WebSocket may take to send `connection_init` (then 4408).
    #[serde(rename = "init_timeout_ms", deserialize_with = "duration::millis")]
    pub init_timeout: Duration,
    /// How often the gateway pings a WebSocket (and sends an SSE keep-alive); a
    /// client silent for a whole interval after a ping is disconnected.
    #[serde(rename = "ping_ms", deserialize_with = "duration::millis")]
    pub ping: Duration,
    /// Most operations running at once on one WebSocket.
    pub max_per_connection: usize,
    /// Most WebSocket and SSE connections open at once per gateway key.
    pub max_connections_per_key: usize,
    /// Most symbols in one `quotes` subscription.
    pub max_symbols: usize,
    /// Events kept per account for `orderUpdates(after:)`.
    pub history: usize,
    /// How long a replica's hold on an account's broker stream lasts unrenewed.
    #[serde(rename = "lease_ms", deserialize_with = "duration::millis")]
    pub lease: Duration,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            enabled: true,
            linger: Duration::from_millis(30_000),
            init_timeout: Duration::from_millis(10_000),
            ping: Duration::from_millis(15_000),
            max_per_connection: 20,
            max_connections_per_key: 100,
            max_symbols: 50,
            history: 1_000,
            lease: Duration::from_millis(5_000),
        }
    }
}

impl SubscriptionSettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[
            ("subscriptions.init_timeout_ms", self.init_timeout),
            ("subscriptions.ping_ms", self.ping),
            ("subscriptions.lease_ms", self.lease),
        ])?;
        positive(&[
            ("subscriptions.max_per_connection", self.max_per_connection),
            (
                "subscriptions.max_connections_per_key",
                self.max_connections_per_key,
            ),
            ("subscriptions.max_symbols", self.max_symbols),
            ("subscriptions.history", self.history),
        ])?;
        // A ping every few milliseconds is a busy loop per connection, and a client
        // on a slow link could never answer in time.
        if self.ping < Duration::from_millis(Self::MIN_PING_MS) {
            fail(
                "subscriptions.ping_ms",
                format!(
                    "must be at least {} ms, got {}",
                    Self::MIN_PING_MS,
                    self.ping.as_millis()
                ),
            )?;
        }
        Ok(())
    }

    const MIN_PING_MS: u64 = 50;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeros_are_refused() {
        assert_eq!(SubscriptionSettings::default().validate(), Ok(()));
        let zero_ping = SubscriptionSettings {
            ping: Duration::ZERO,
            ..SubscriptionSettings::default()
        };
        assert_eq!(
            zero_ping.validate().unwrap_err().0,
            "subscriptions.ping_ms".to_string()
        );
        let zero_ops = SubscriptionSettings {
            max_per_connection: 0,
            ..SubscriptionSettings::default()
        };
        assert_eq!(
            zero_ops.validate().unwrap_err().0,
            "subscriptions.max_per_connection".to_string()
        );
        let fast_ping = SubscriptionSettings {
            ping: Duration::from_millis(5),
            ..SubscriptionSettings::default()
        };
        assert!(fast_ping.validate().is_err());
    }
}
