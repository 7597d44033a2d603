//! The broker's order stream, for `/metrics`: whether it is up (subscribed and
//! reconciled), how often it had to reconnect, and what it published. Atomics, as
//! for connections: the stream's task must never wait behind a scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::header;

#[derive(Debug, Default)]
pub(crate) struct StreamMetrics {
    up: AtomicU64,
    subscribers: AtomicU64,
    connects: AtomicU64,
    published: AtomicU64,
    reconciled: AtomicU64,
    dropped: AtomicU64,
}

impl StreamMetrics {
    /// Subscribed and reconciled (events flow to subscribers), or not.
    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(u64::from(up), Ordering::Relaxed);
    }

    /// The order subscriptions open now.
    pub(crate) fn set_subscribers(&self, n: usize) {
        self.subscribers.store(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    /// One event published to subscribers; `reconciled` when found over REST.
    pub(crate) fn published(&self, reconciled: bool) {
        let counter = match reconciled {
            true => &self.reconciled,
            false => &self.published,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A duplicate or an event older than what subscribers saw.
    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        header(
            out,
            "brokergraph_order_stream_up",
            "gauge",
            "1 while the broker's order stream is subscribed and reconciled.",
        );
        let _ = writeln!(out, "brokergraph_order_stream_up {}", get(&self.up));
        header(
            out,
            "brokergraph_order_subscriptions",
            "gauge",
            "orderUpdates subscriptions open now.",
        );
        let _ = writeln!(
            out,
            "brokergraph_order_subscriptions {}",
            get(&self.subscribers)
        );
        header(
            out,
            "brokergraph_order_stream_connects_total",
            "counter",
            "Broker order stream connections opened (first connect and reconnects).",
        );
        let _ = writeln!(
            out,
            "brokergraph_order_stream_connects_total {}",
            get(&self.connects)
        );
        header(
            out,
            "brokergraph_order_events_total",
            "counter",
            "Order events published to subscribers, by source (stream or reconcile).",
        );
        let _ = writeln!(
            out,
            "brokergraph_order_events_total{{source=\"stream\"}} {}",
            get(&self.published)
        );
        let _ = writeln!(
            out,
            "brokergraph_order_events_total{{source=\"reconcile\"}} {}",
            get(&self.reconciled)
        );
        header(
            out,
            "brokergraph_order_events_dropped_total",
            "counter",
            "Broker order events not published: duplicates, or older than what subscribers saw.",
        );
        let _ = writeln!(
            out,
            "brokergraph_order_events_dropped_total {}",
            get(&self.dropped)
        );
    }
}
