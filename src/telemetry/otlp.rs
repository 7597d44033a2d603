//! Span export to an OpenTelemetry collector over OTLP/HTTP with protobuf bodies
//! (`POST {log.otlp_endpoint}/v1/traces`), the transport every collector accepts
//! without a gRPC stack in this binary.
//!
//! Spans are batched by the SDK's batch processor running as a task on our tokio
//! runtime and sent with a reqwest client, the same HTTP stack the broker calls use.
//! What is exported is what the fmt layer sees: span names and fields chosen by the
//! `#[tracing::instrument]` attributes, which skip all arguments, and the events
//! inside them. Secrets are `Secret`s whose `Debug`/`Display` print `[redacted]`,
//! so no attribute can carry a key.

use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;

use super::BoxedLayer;
use crate::trace::TraceContext;

/// Bounds one export: a collector that hangs must not hold spans (or, on
/// shutdown, the process) for long.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The running exporter; `shutdown` flushes what is buffered.
pub(super) struct Exporter {
    provider: SdkTracerProvider,
}

/// The OTLP path for traces, appended because an endpoint set in code is used
/// verbatim by the exporter, while operators configure the collector's base URL
/// (as with `OTEL_EXPORTER_OTLP_ENDPOINT`).
fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim().trim_end_matches('/'))
}

/// The tracing layer that turns spans into OTLP spans, and the exporter behind it.
/// Must be called inside a tokio runtime: the batch processor spawns its task.
pub(super) fn exporter(
    endpoint: &str,
    service_name: &str,
) -> Result<(BoxedLayer, Exporter), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("building the OTLP exporter: {e}"))?;
    let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
    // The builder reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; the
    // latter, when set, names the service over `log.otlp_service_name`.
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service_name.trim().to_string());
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("brokergraph");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Ok((layer, Exporter { provider }))
}

/// See `telemetry::adopt_parent`.
pub(super) fn adopt_parent(span: &tracing::Span, incoming: TraceContext) {
    let (trace_id, span_id, sampled) = incoming.parts();
    let flags = match sampled {
        true => TraceFlags::SAMPLED,
        false => TraceFlags::default(),
    };
    let parent = SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        flags,
        true,
        TraceState::default(),
    );
    // Fails when no OpenTelemetry layer is installed (no export) or the span is
    // filtered out: it then keeps a trace of its own.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
}

/// See `telemetry::span_trace`.
pub(super) fn span_trace(span: &tracing::Span) -> Option<TraceContext> {
    let context = span.context();
    let ours = context.span().span_context().clone();
    ours.is_valid().then(|| {
        TraceContext::from_parts(
            ours.trace_id().to_bytes(),
            ours.span_id().to_bytes(),
            ours.is_sampled(),
        )
    })
}

impl Exporter {
    /// Exports the buffered spans and stops the batch task. Blocks the calling
    /// thread until the runtime's task answers, so call it outside the runtime's
    /// worker threads, while the runtime is still running.
    pub(super) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "flushing spans to the OTLP collector failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_appended_once() {
        assert_eq!(traces_url("http://otel:4318"), "http://otel:4318/v1/traces");
        assert_eq!(
            traces_url("http://otel:4318/"),
            "http://otel:4318/v1/traces"
        );
    }
}
