//! Open connections by kind, connections refused at the cap, and connections
//! closed by a timeout, for `/metrics`. Each series is one atomic, its handle
//! taken from its family at start-up: the accept loop and every connection touch
//! these, and a scrape must not wait behind a flood of them.
//!
//! A connection is counted by holding a [`ConnectionGuard`]: the gauge goes down
//! when the guard drops, so a connection that ends by any path (an error, a panic
//! in its task, a client that vanished) cannot leave the gauge high.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What a connection is serving. Each open connection (or, over HTTP/2, each SSE
/// stream) counts under exactly one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionKind {
    /// HTTP/1.1 or HTTP/2 requests, and keep-alive connections between them.
    Http,
    /// A connection upgraded to WebSocket (`101 Switching Protocols`).
    WebSocket,
    /// A `text/event-stream` response being streamed.
    Sse,
}

impl ConnectionKind {
    const ALL: [ConnectionKind; 3] = [
        ConnectionKind::Http,
        ConnectionKind::WebSocket,
        ConnectionKind::Sse,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Http => "http",
            ConnectionKind::WebSocket => "websocket",
            ConnectionKind::Sse => "sse",
        }
    }
}

/// Why the gateway closed a connection (or answered 408) on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeoutKind {
    /// `server.header_read_timeout_ms`: a request's headers did not arrive.
    Header,
    /// `server.body_read_timeout_ms`: a request's body did not arrive.
    Body,
    /// `server.keep_alive_timeout_ms`: nothing in flight for that long.
    Idle,
    /// `server.keep_alive_timeout_ms`: a response write made no progress (a client
    /// that stopped reading).
    Write,
}

impl TimeoutKind {
    const ALL: [TimeoutKind; 4] = [
        TimeoutKind::Header,
        TimeoutKind::Body,
        TimeoutKind::Idle,
        TimeoutKind::Write,
    ];

    fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Header => "header",
            TimeoutKind::Body => "body",
            TimeoutKind::Idle => "idle",
            TimeoutKind::Write => "write",
        }
    }
}

/// How a connection over `server.max_connections` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Answered `503` with `Retry-After` and closed.
    Answered,
    /// Closed at once: even the few connections kept to answer 503 were taken.
    Closed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabel {
    answer: &'static str,
}

#[derive(Debug)]
pub(crate) struct Connections {
    open: [Gauge; 3],
    refused_answered: Counter,
    refused_closed: Counter,
    timeouts: [Counter; 4],
    /// The effective `server.max_connections`, set when the gateway binds.
    max: Gauge,
}

impl Connections {
    /// Every series exists from the start, at zero, so a dashboard sees each kind.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let open = Family::<KindLabel, Gauge>::default();
        let refused = Family::<AnswerLabel, Counter>::default();
        let timeouts = Family::<KindLabel, Counter>::default();
        let max = Gauge::default();
        let connections = Connections {
            open: ConnectionKind::ALL
                .map(|k| open.get_or_create_owned(&KindLabel { kind: k.as_str() })),
            refused_answered: refused.get_or_create_owned(&AnswerLabel { answer: "503" }),
            refused_closed: refused.get_or_create_owned(&AnswerLabel { answer: "closed" }),
            timeouts: TimeoutKind::ALL
                .map(|k| timeouts.get_or_create_owned(&KindLabel { kind: k.as_str() })),
            max: max.clone(),
        };
        registry.register(
            "brokergraph_connections_open",
            "Connections open by kind (http, websocket, sse; an SSE stream over HTTP/2 counts as one sse while its connection stays http)",
            open,
        );
        registry.register(
            "brokergraph_connections_max",
            "server.max_connections in effect (set, or derived from the file limit at start)",
            max,
        );
        registry.register(
            "brokergraph_connections_refused",
            "Connections refused over server.max_connections: answered 503, or closed at once",
            refused,
        );
        registry.register(
            "brokergraph_connection_timeouts",
            "Connections closed (or requests answered 408) by a server timeout, by kind",
            timeouts,
        );
        connections
    }

    /// Counts one connection (or SSE stream) of `kind` until the guard drops.
    pub(crate) fn opened(self: &Arc<Self>, kind: ConnectionKind) -> ConnectionGuard {
        self.gauge(kind).inc();
        ConnectionGuard {
            connections: self.clone(),
            kind,
        }
    }

    pub(crate) fn refused(&self, how: Refusal) {
        let counter = match how {
            Refusal::Answered => &self.refused_answered,
            Refusal::Closed => &self.refused_closed,
        };
        counter.inc();
    }

    pub(crate) fn timed_out(&self, kind: TimeoutKind) {
        self.timeouts[kind as usize].inc();
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    /// Open now, of `kind`.
    #[cfg(test)]
    pub(crate) fn open(&self, kind: ConnectionKind) -> i64 {
        self.gauge(kind).get()
    }

    /// Closed by the timeout `kind` so far.
    #[cfg(test)]
    pub(crate) fn timeouts(&self, kind: TimeoutKind) -> u64 {
        self.timeouts[kind as usize].get()
    }

    fn gauge(&self, kind: ConnectionKind) -> &Gauge {
        &self.open[kind as usize]
    }
}

/// One open connection (or SSE stream) in the gauge of its kind.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    connections: Arc<Connections>,
    kind: ConnectionKind,
}

impl ConnectionGuard {
    /// Moves this connection to another kind (an upgrade to WebSocket, an HTTP/1.1
    /// connection given over to an SSE stream and back).
    pub(crate) fn reclassify(&mut self, kind: ConnectionKind) {
        if kind != self.kind {
            self.connections.gauge(self.kind).dec();
            self.connections.gauge(kind).inc();
            self.kind = kind;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.connections.gauge(self.kind).dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_counts_its_kind_until_it_drops_even_when_moved_between_kinds() {
        let connections = Arc::new(Connections::register(&mut Registry::default()));
        let mut ws = connections.opened(ConnectionKind::Http);
        let http = connections.opened(ConnectionKind::Http);
        assert_eq!(connections.open(ConnectionKind::Http), 2);
        ws.reclassify(ConnectionKind::WebSocket);
        assert_eq!(connections.open(ConnectionKind::Http), 1);
        assert_eq!(connections.open(ConnectionKind::WebSocket), 1);
        drop(ws);
        drop(http);
        for kind in ConnectionKind::ALL {
            assert_eq!(connections.open(kind), 0, "{kind:?}");
        }
    }

    #[test]
    fn every_kind_is_served_even_at_zero() {
        let mut registry = Registry::default();
        let connections = Connections::register(&mut registry);
        connections.timed_out(TimeoutKind::Header);
        connections.refused(Refusal::Closed);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        for line in [
            "brokergraph_connections_open{kind=\"websocket\"} 0",
            "brokergraph_connection_timeouts_total{kind=\"header\"} 1",
            "brokergraph_connection_timeouts_total{kind=\"idle\"} 0",
            "brokergraph_connections_refused_total{answer=\"closed\"} 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in {out}");
        }
    }
}
