//! Logging and tracing set-up: one function, any writer, so tests can silence or capture logs. When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over OTLP/gRPC, and W3C `traceparent`
//! metadata of incoming calls is continued (see `metrics::GrpcMetricsLayer`).

use std::io::IsTerminal;

use opentelemetry::{KeyValue, global, trace::TracerProvider};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Layer, fmt::MakeWriter, layer::SubscriberExt, registry, util::SubscriberInitExt,
};

use crate::config::{LogConfig, LogFormat};

/// Keeps the span exporter alive; dropping it flushes what is still buffered.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("ticketd: flushing trace spans failed: {error}");
        }
    }
}

/// The OTLP span pipeline named after this service, when an endpoint is configured.
fn otlp_provider() -> Result<Option<SdkTracerProvider>, String> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        return Ok(None);
    }
    // The exporter reads the endpoint (and OTEL_EXPORTER_OTLP_* options) from the environment itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|error| format!("cannot set up the OTLP span exporter: {error}"))?;
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource())
            .build(),
    ))
}

/// `service.name` and `service.version` of every exported span.
pub fn resource() -> Resource {
    Resource::builder()
        .with_service_name("ticketd")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Installs the global subscriber (and the OTLP exporter when configured). Fails on a filter that does not
/// parse, so a typo is not silently ignored.
pub fn init<W>(config: &LogConfig, writer: W) -> Result<TelemetryGuard, String>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&config.level)
        .map_err(|error| format!("invalid --log-level {:?}: {error}", config.level))?;
    // Colour codes only help a person at a terminal; in files and log pipelines they are noise.
    let ansi = config.format == LogFormat::Text && std::io::stderr().is_terminal();
    let logs = match config.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
    };
    let provider = otlp_provider()?;
    global::set_text_map_propagator(TraceContextPropagator::new());
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("ticketd")));
    registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|error| format!("cannot install the log subscriber: {error}"))?;
    Ok(TelemetryGuard { provider })
}

/// The W3C `traceparent` of the current span, empty when it is not traced (no exporter, or not sampled): what
/// a webhook delivery stores so that each of its attempts links back to the write that caused it.
pub fn current_traceparent() -> String {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::<String, String>::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    carrier.remove("traceparent").unwrap_or_default()
}

/// The span context a stored `traceparent` names, for a link to it; `None` when empty or malformed.
pub fn span_context_of(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::TraceContextExt;
    if traceparent.is_empty() {
        return None;
    }
    let carrier =
        std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}
