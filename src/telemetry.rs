//! Logging: tracing-subscriber's fmt layer, human text or one JSON object per line,
//! to stderr (stdout is for command output such as `schema`). The filter is
//! `RUST_LOG` when set, since that is what an operator reaches for while debugging,
//! else `log.filter`. With the `otlp` feature and `log.otlp_endpoint` (or the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT`), the same spans also go to an
//! OpenTelemetry collector (see `otlp`). JSON lines carry every open span's fields,
//! so each line of a request names its `trace_id` (`crate::trace`).

use std::io::IsTerminal;

use tracing_subscriber::layer::{Layer, Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::{LogFormat, LogSettings};

#[cfg(feature = "otlp")]
mod otlp;

/// The subscriber every output layer sits on: one filter for logs and spans alike,
/// so `log.filter` decides what is exported as well as what is printed.
type Filtered = Layered<EnvFilter, Registry>;
type BoxedLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// Holds the span exporter, if any. Dropping it flushes the spans still buffered
/// and stops the exporter, so the last requests before a graceful shutdown are not
/// lost; keep it until the server has stopped, and drop it while the tokio runtime
/// is still alive (the exporter runs on it).
#[must_use = "dropping the guard stops the span export"]
#[derive(Default)]
pub struct Guard {
    #[cfg(feature = "otlp")]
    otlp: Option<otlp::Exporter>,
}

/// Installs the global subscriber. A second call (or a subscriber installed by
/// someone else, e.g. a test harness) is left in place rather than panicking.
///
/// With `log.otlp_endpoint` set (only possible in an `otlp` build: validation
/// refuses it otherwise) this must run inside a tokio runtime, whose tasks send the
/// batches.
pub fn init(log: &LogSettings) -> Guard {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, rejected) = filter(&log.filter, rust_log.as_deref());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    #[allow(unused_mut)]
    let mut layers: Vec<BoxedLayer> = vec![match log.format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }];
    #[allow(unused_mut)]
    let mut guard = Guard::default();
    let endpoint = log.otlp_endpoint.clone().or_else(otel_endpoint);
    #[cfg(not(feature = "otlp"))]
    let otlp_ignored = endpoint.is_some();
    #[cfg(feature = "otlp")]
    let otlp_error = match endpoint.as_deref() {
        None => None,
        Some(endpoint) => match otlp::exporter(endpoint, &log.otlp_service_name) {
            Ok((layer, exporter)) => {
                layers.push(layer);
                guard.otlp = Some(exporter);
                None
            }
            Err(e) => Some(e),
        },
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    if let (Ok(()), Some(error)) = (&installed, rejected) {
        tracing::warn!(%error, filter = %log.filter, "RUST_LOG is not a valid filter; using log.filter");
    }
    #[cfg(feature = "otlp")]
    if let Some(error) = otlp_error {
        tracing::error!(%error, "cannot export spans over OTLP; serving without");
    }
    #[cfg(not(feature = "otlp"))]
    if otlp_ignored {
        tracing::warn!("OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build cannot export spans (build with `--features otlp`)");
    }
    guard
}

/// The standard variable, when `log.otlp_endpoint` is unset: platforms that inject
/// OpenTelemetry settings set this one.
fn otel_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
}

/// With OTLP export, makes `span` a child of the client's trace, so its exported
/// spans join it. Call it before the span is first entered (the bridge starts the
/// OpenTelemetry span then, and its parent is fixed from there on).
pub(crate) fn adopt_parent(span: &tracing::Span, incoming: crate::trace::TraceContext) {
    #[cfg(feature = "otlp")]
    otlp::adopt_parent(span, incoming);
    #[cfg(not(feature = "otlp"))]
    let _ = (span, incoming);
}

/// With OTLP export, the trace context of `span` as exported, so logs, errors and
/// broker calls name the trace its spans belong to. `None` without export.
pub(crate) fn span_trace(span: &tracing::Span) -> Option<crate::trace::TraceContext> {
    #[cfg(feature = "otlp")]
    {
        otlp::span_trace(span)
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = span;
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(exporter) = self.otlp.take() {
            exporter.shutdown();
        }
    }
}

/// The filter to use, and why `RUST_LOG` was rejected if it was. `settings` was
/// validated by the config loader; should it still fail, `info` is the fallback.
fn filter(settings: &str, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let from_settings = || EnvFilter::try_new(settings).unwrap_or_else(|_| EnvFilter::new("info"));
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => (from_settings(), None),
        Some(directives) => match EnvFilter::try_new(directives) {
            Ok(filter) => (filter, None),
            Err(e) => (from_settings(), Some(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn rust_log_wins_when_valid() {
        let (f, rejected) = filter("info", Some("debug"));
        assert_eq!(f.to_string(), "debug");
        assert!(rejected.is_none());
    }

    #[test]
    fn invalid_rust_log_falls_back_to_settings() {
        let (f, rejected) = filter("warn,brokergraph=debug", Some("=[bad"));
        assert!(f.to_string().contains("brokergraph=debug"));
        assert!(rejected.is_some());
    }

    #[test]
    fn empty_rust_log_is_unset() {
        let (f, rejected) = filter("warn", Some("  "));
        assert_eq!(f.to_string(), "warn");
        assert!(rejected.is_none());
    }
}
