//! The broker's order stream, for `/metrics`: whether it is up (subscribed and
//! reconciled), how often it had to reconnect, and what it published. One atomic
//! per series, as for connections: the stream's task must never wait behind a
//! scrape.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AccountLabel {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    account: String,
    source: &'static str,
}

/// Every account's order stream series; each account's feed records into its own
/// (`account`).
#[derive(Debug)]
pub(crate) struct StreamFamilies {
    up: Family<AccountLabel, Gauge>,
    subscribers: Family<AccountLabel, Gauge>,
    connects: Family<AccountLabel, Counter>,
    events: Family<EventLabel, Counter>,
    dropped: Family<AccountLabel, Counter>,
}

/// One account's order stream series, resolved once.
#[derive(Debug)]
pub(crate) struct StreamMetrics {
    up: Gauge,
    subscribers: Gauge,
    connects: Counter,
    published: Counter,
    reconciled: Counter,
    dropped: Counter,
}

impl StreamFamilies {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = StreamFamilies {
            up: Family::default(),
            subscribers: Family::default(),
            connects: Family::default(),
            events: Family::default(),
            dropped: Family::default(),
        };
        registry.register(
            "brokergraph_order_stream_up",
            "1 while the broker's order stream is subscribed and reconciled",
            m.up.clone(),
        );
        registry.register(
            "brokergraph_order_subscriptions",
            "orderUpdates subscriptions open now",
            m.subscribers.clone(),
        );
        registry.register(
            "brokergraph_order_stream_connects",
            "Broker order stream connections opened (first connect and reconnects)",
            m.connects.clone(),
        );
        registry.register(
            "brokergraph_order_events",
            "Order events published to subscribers, by source (stream or reconcile)",
            m.events.clone(),
        );
        registry.register(
            "brokergraph_order_events_dropped",
            "Broker order events not published: duplicates, or older than what subscribers saw",
            m.dropped.clone(),
        );
        m
    }

    pub(crate) fn account(&self, account: &str) -> Arc<StreamMetrics> {
        let label = AccountLabel {
            account: account.to_string(),
        };
        let event = |source| EventLabel {
            account: account.to_string(),
            source,
        };
        Arc::new(StreamMetrics {
            up: self.up.get_or_create_owned(&label),
            subscribers: self.subscribers.get_or_create_owned(&label),
            connects: self.connects.get_or_create_owned(&label),
            published: self.events.get_or_create_owned(&event("stream")),
            reconciled: self.events.get_or_create_owned(&event("reconcile")),
            dropped: self.dropped.get_or_create_owned(&label),
        })
    }
}

impl StreamMetrics {
    /// Subscribed and reconciled (events flow to subscribers), or not.
    pub(crate) fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// The order subscriptions open now.
    pub(crate) fn set_subscribers(&self, n: usize) {
        self.subscribers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn connected(&self) {
        self.connects.inc();
    }

    /// One event published to subscribers; `reconciled` when found over REST.
    pub(crate) fn published(&self, reconciled: bool) {
        let counter = match reconciled {
            true => &self.reconciled,
            false => &self.published,
        };
        counter.inc();
    }

    /// A duplicate or an event older than what subscribers saw.
    pub(crate) fn dropped(&self) {
        self.dropped.inc();
    }
}
