//! Open connections by kind, connections refused at the cap, and connections
//! closed by a timeout, for `/metrics`. Atomics rather than the registry's mutex:
//! the accept loop and every connection touch these, and a scrape must not wait
//! behind a flood of them.
//!
//! A connection is counted by holding a [`ConnectionGuard`]: the gauge goes down
//! when the guard drops, so a connection that ends by any path (an error, a panic
//! in its task, a client that vanished) cannot leave the gauge high.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::header;

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

#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: [AtomicI64; 3],
    refused_answered: AtomicU64,
    refused_closed: AtomicU64,
    timeouts: [AtomicU64; 4],
    /// The effective `server.max_connections`, set when the gateway binds.
    max: AtomicUsize,
}

impl Connections {
    /// Counts one connection (or SSE stream) of `kind` until the guard drops.
    pub(crate) fn opened(self: &Arc<Self>, kind: ConnectionKind) -> ConnectionGuard {
        self.gauge(kind).fetch_add(1, Ordering::Relaxed);
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
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self, kind: TimeoutKind) {
        self.timeouts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Open now, of `kind`.
    pub(crate) fn open(&self, kind: ConnectionKind) -> i64 {
        self.gauge(kind).load(Ordering::Relaxed)
    }

    fn gauge(&self, kind: ConnectionKind) -> &AtomicI64 {
        &self.open[kind as usize]
    }

    pub(crate) fn render(&self, out: &mut String) {
        header(
            out,
            "brokergraph_connections_open",
            "gauge",
            "Connections open by kind (http, websocket, sse; an SSE stream over HTTP/2 counts as one sse while its connection stays http).",
        );
        for kind in ConnectionKind::ALL {
            let _ = writeln!(
                out,
                "brokergraph_connections_open{{kind=\"{}\"}} {}",
                kind.as_str(),
                self.open(kind)
            );
        }
        header(
            out,
            "brokergraph_connections_max",
            "gauge",
            "server.max_connections in effect (set, or derived from the file limit at start).",
        );
        let _ = writeln!(
            out,
            "brokergraph_connections_max {}",
            self.max.load(Ordering::Relaxed)
        );
        header(
            out,
            "brokergraph_connections_refused_total",
            "counter",
            "Connections refused over server.max_connections: answered 503, or closed at once.",
        );
        for (how, n) in [
            ("503", &self.refused_answered),
            ("closed", &self.refused_closed),
        ] {
            let _ = writeln!(
                out,
                "brokergraph_connections_refused_total{{answer=\"{how}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "brokergraph_connection_timeouts_total",
            "counter",
            "Connections closed (or requests answered 408) by a server timeout, by kind.",
        );
        for kind in TimeoutKind::ALL {
            let _ = writeln!(
                out,
                "brokergraph_connection_timeouts_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                self.timeouts[kind as usize].load(Ordering::Relaxed)
            );
        }
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
            self.connections
                .gauge(self.kind)
                .fetch_sub(1, Ordering::Relaxed);
            self.connections.gauge(kind).fetch_add(1, Ordering::Relaxed);
            self.kind = kind;
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.connections
            .gauge(self.kind)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_counts_its_kind_until_it_drops_even_when_moved_between_kinds() {
        let connections = Arc::new(Connections::default());
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
    fn render_names_every_kind_even_at_zero() {
        let connections = Connections::default();
        connections.timed_out(TimeoutKind::Header);
        connections.refused(Refusal::Closed);
        let mut out = String::new();
        connections.render(&mut out);
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
