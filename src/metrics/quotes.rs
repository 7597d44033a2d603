//! The broker's quote stream, for `/metrics`: whether it is up, how many symbols it
//! carries against the broker's limit, how many subscriptions it feeds and how many
//! quotes it brought. One atomic per series, like the order stream's.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::streams::AccountLabel;

/// Every account's quote stream series; each account's hub records into its own
/// (`account`).
#[derive(Debug)]
pub(crate) struct QuoteFamilies {
    up: Family<AccountLabel, Gauge>,
    symbols: Family<AccountLabel, Gauge>,
    subscriptions: Family<AccountLabel, Gauge>,
    connects: Family<AccountLabel, Counter>,
    received: Family<AccountLabel, Counter>,
}

/// One account's quote stream series, resolved once.
#[derive(Debug)]
pub(crate) struct QuoteMetrics {
    up: Gauge,
    symbols: Gauge,
    subscriptions: Gauge,
    connects: Counter,
    received: Counter,
}

impl QuoteFamilies {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = QuoteFamilies {
            up: Family::default(),
            symbols: Family::default(),
            subscriptions: Family::default(),
            connects: Family::default(),
            received: Family::default(),
        };
        registry.register(
            "brokergraph_quote_stream_up",
            "1 while the broker's quote stream is connected",
            m.up.clone(),
        );
        registry.register(
            "brokergraph_quote_symbols",
            "Symbols the broker streams quotes of now: the union of what subscribers watch, lingering ones included",
            m.symbols.clone(),
        );
        registry.register(
            "brokergraph_quote_subscriptions",
            "quotes subscriptions open now",
            m.subscriptions.clone(),
        );
        registry.register(
            "brokergraph_quote_stream_connects",
            "Broker quote stream connections opened (first connect and reconnects)",
            m.connects.clone(),
        );
        registry.register(
            "brokergraph_quotes_received",
            "Quotes received from the broker's stream",
            m.received.clone(),
        );
        m
    }

    pub(crate) fn account(&self, account: &str) -> Arc<QuoteMetrics> {
        let label = AccountLabel {
            account: account.to_string(),
        };
        Arc::new(QuoteMetrics {
            up: self.up.get_or_create_owned(&label),
            symbols: self.symbols.get_or_create_owned(&label),
            subscriptions: self.subscriptions.get_or_create_owned(&label),
            connects: self.connects.get_or_create_owned(&label),
            received: self.received.get_or_create_owned(&label),
        })
    }
}

impl QuoteMetrics {
    pub(crate) fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    pub(crate) fn set_symbols(&self, n: usize) {
        self.symbols.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn set_subscriptions(&self, n: usize) {
        self.subscriptions.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn connected(&self) {
        self.connects.inc();
    }

    pub(crate) fn received(&self) {
        self.received.inc();
    }
}
