//! Prometheus metrics: a process-wide recorder, the `/metrics` HTTP endpoint on its own port, and the tower
//! layer that measures every gRPC call.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::{net::TcpListener, sync::watch};

/// Calls that started and have not answered yet.
pub const IN_FLIGHT: &str = "ticketd_grpc_requests_in_flight";
/// Calls answered, by method and gRPC status code.
pub const REQUESTS: &str = "ticketd_grpc_requests_total";
/// Time to answer (response headers; for streams, until the stream opened), by method and code.
pub const DURATION: &str = "ticketd_grpc_request_duration_seconds";
/// Streams open now, by kind (`tickets`, `cards`).
pub const STREAMS_OPEN: &str = "ticketd_streams_open";
/// Outbox entries published to this process's streams.
pub const EVENTS_FANNED_OUT: &str = "ticketd_events_fanned_out_total";
/// Times a stream fell behind the broadcast and went back to the database.
pub const LAG_RESYNCS: &str = "ticketd_stream_lag_resyncs_total";
/// Database connections of this replica's pool, by state (`idle`, `in_use`).
pub const DB_CONNECTIONS: &str = "ticketd_db_pool_connections";
/// 1 while the database answers the health probe, 0 while it does not.
pub const DATABASE_UP: &str = "ticketd_database_up";
/// Calls refused by the concurrency limit.
pub const SHED: &str = "ticketd_grpc_requests_shed_total";

/// Webhook attempts, by outcome (`succeeded`, `retrying`, `failed`, `disabled`).
pub const WEBHOOK_DELIVERIES: &str = "ticketd_webhook_deliveries_total";
/// Time of one webhook attempt (connection, request and the answer's first KiB).
pub const WEBHOOK_ATTEMPT_DURATION: &str = "ticketd_webhook_attempt_duration_seconds";
/// Time from an event to its successful delivery, retries included.
pub const WEBHOOK_DELIVERY_LATENCY: &str = "ticketd_webhook_delivery_latency_seconds";
/// Deliveries waiting to go out (sampled).
pub const WEBHOOK_QUEUE_DEPTH: &str = "ticketd_webhook_queue_depth";
/// Webhooks disabled (by an admin, a 410, or five days of failures; sampled).
pub const WEBHOOKS_DISABLED: &str = "ticketd_webhooks_disabled";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder, installed on first use. `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_gauge!(IN_FLIGHT, "gRPC calls being answered");
    metrics::describe_counter!(REQUESTS, "gRPC calls answered, by method and code");
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "time to answer a gRPC call (to the opening of a stream)"
    );
    metrics::describe_gauge!(STREAMS_OPEN, "server streams open");
    metrics::describe_counter!(EVENTS_FANNED_OUT, "outbox entries published to streams");
    metrics::describe_counter!(
        LAG_RESYNCS,
        "streams that fell behind and re-read the database"
    );
    metrics::describe_gauge!(DB_CONNECTIONS, "database pool connections by state");
    metrics::describe_gauge!(
        DATABASE_UP,
        "1 while the database answers the health probe, else 0"
    );
    metrics::describe_counter!(SHED, "gRPC calls refused at the concurrency limit");
    metrics::describe_counter!(WEBHOOK_DELIVERIES, "webhook attempts by outcome");
    metrics::describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        metrics::Unit::Seconds,
        "time of one webhook attempt"
    );
    metrics::describe_histogram!(
        WEBHOOK_DELIVERY_LATENCY,
        metrics::Unit::Seconds,
        "time from an event to its successful webhook delivery"
    );
    metrics::describe_gauge!(WEBHOOK_QUEUE_DEPTH, "webhook deliveries waiting to go out");
    metrics::describe_gauge!(WEBHOOKS_DISABLED, "webhooks that are disabled");
}

/// Serves `GET /metrics` on `listener` until `stopping` turns true.
pub async fn serve(
    listener: TcpListener,
    handle: &'static PrometheusHandle,
    stopping: watch::Receiver<bool>,
) {
    let mut stopping = stopping;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|stopping| *stopping) => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| async move {
                let response = if request.uri().path() == "/metrics" {
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(handle.render())))
                } else {
                    Response::builder()
                        .status(404)
                        .body(Full::new(Bytes::from_static(
                            b"not found; metrics are at /metrics\n",
                        )))
                };
                Ok::<_, Infallible>(response.unwrap_or_default())
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts a stream as open for as long as it lives.
pub struct OpenStream(&'static str);

impl OpenStream {
    /// A stream of `kind` opened.
    pub fn new(kind: &'static str) -> Self {
        metrics::gauge!(STREAMS_OPEN, "kind" => kind).increment(1.0);
        Self(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(STREAMS_OPEN, "kind" => self.0).decrement(1.0);
    }
}

/// Measures every call: in flight, count and duration by method and status code.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower_layer::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let in_flight = metrics::gauge!(IN_FLIGHT);
        in_flight.increment(1.0);
        let span = tracing::info_span!(
            "grpc",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            // Filled in by the auth layer, which runs inside this span.
            enduser.id = tracing::field::Empty,
            enduser.role = tracing::field::Empty,
            // Recorded by handlers that address one ticket.
            ticket.id = tracing::field::Empty,
        );
        // Continue the caller's trace when it sent W3C `traceparent` metadata.
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        let _ = tracing_opentelemetry::OpenTelemetrySpanExt::set_parent(&span, parent);
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(tracing::Instrument::instrument(
            async move {
                let result = future.await;
                in_flight.decrement(1.0);
                // Errors come as trailers-only responses with the status in the headers; a response without
                // it is a success whose status follows in the trailers.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .map(|code| format!("{:?}", tonic::Code::from(code)))
                        .unwrap_or_else(|| "Ok".to_owned()),
                    Err(_) => "Unknown".to_owned(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", code.as_str());
                record(&method, &code, started.elapsed());
                result
            },
            span,
        ))
    }
}

/// Reads W3C trace context from HTTP/2 headers (gRPC metadata).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn record(method: &str, code: &str, elapsed: Duration) {
    let labels = [("method", method.to_owned()), ("code", code.to_owned())];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(DURATION, &labels).record(elapsed.as_secs_f64());
}
