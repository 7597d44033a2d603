//! The W3C trace context (`traceparent`) of one request: the client's, when it sent
//! one, else a trace started here. The server sets it for the request's task
//! (`server.rs → trace_context`); the request's span names its trace id (so every
//! JSON log line of the request carries it), errors carry it in `extensions.traceId`,
//! and every broker call the request makes sends it on as the parent of that call
//! (`broker::transport::exchange`), so the client's trace reaches the broker.
//!
//! A task-local rather than an argument, for the reason `request` is one: the
//! `Broker` trait takes no request. Work a request hands to another task carries it
//! over with [`TraceContext::scope`]; a broker call one request starts and others
//! join (single-flight) carries the trace of the request that started it.

use std::fmt::Write;
use std::future::Future;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A trace id and the id of the span that is the parent of what happens next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

impl TraceContext {
    /// A new trace, sampled (nothing here drops spans on a trace's say-so).
    pub(crate) fn start() -> Self {
        TraceContext {
            trace_id: nonzero(rand::random()),
            span_id: nonzero(rand::random()),
            sampled: true,
        }
    }

    /// Parses a `traceparent` header (version `00`, or a later version read as 00
    /// asks); `None` for anything malformed, which then starts a new trace.
    pub(crate) fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let span_id = parts.next()?;
        let flags = parts.next()?;
        let version = u8::from_str_radix(hex_exact(version, 2)?, 16).ok()?;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = decode(hex_exact(trace_id, 32)?)?;
        let span_id: [u8; 8] = decode(hex_exact(span_id, 16)?)?;
        let flags = u8::from_str_radix(hex_exact(flags, 2)?, 16).ok()?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The same trace, under a new span of ours.
    pub(crate) fn child(&self) -> Self {
        TraceContext {
            span_id: nonzero(rand::random()),
            ..*self
        }
    }

    /// The trace id as 32 lowercase hex digits, as log search and trace UIs show it.
    pub(crate) fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` header naming this context's span as the parent.
    pub(crate) fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    /// The ids and the sampled flag, for the OpenTelemetry bridge (`telemetry`).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn parts(&self) -> ([u8; 16], [u8; 8], bool) {
        (self.trace_id, self.span_id, self.sampled)
    }

    /// From the OpenTelemetry bridge's ids (`telemetry`).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Self {
        TraceContext {
            trace_id,
            span_id,
            sampled,
        }
    }

    /// The context of the request this task works for, if any.
    pub(crate) fn current() -> Option<Self> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// Runs `work` as part of this trace.
    pub(crate) async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes == [0; N] {
        bytes[N - 1] = 1;
    }
    bytes
}

fn hex_exact(text: &str, len: usize) -> Option<&str> {
    let lower = text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    lower.then_some(text)
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_and_a_child_keeps_its_trace() {
        let parent = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(parent.traceparent(), SAMPLE);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.traceparent(), SAMPLE);
        assert!(child.traceparent().ends_with("-01"));
    }

    #[test]
    fn malformed_or_invalid_headers_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        // A later version may add fields after the flags.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        assert!(!TraceContext::parse(later).unwrap().sampled);
    }

    #[tokio::test]
    async fn the_context_is_current_inside_its_scope_only() {
        assert_eq!(TraceContext::current(), None);
        let context = TraceContext::start();
        let seen = context.scope(async { TraceContext::current() }).await;
        assert_eq!(seen, Some(context));
    }
}
