//! Operations: the healthcheck subcommand, Prometheus metrics, load shedding, deadlines and the request size
//! limit.

use std::{process::Command, sync::OnceLock, time::Duration};

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{InMemorySpanExporter, SdkTracerProvider, SpanData},
};
use tracing_subscriber::layer::SubscriberExt;

use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use ticketd::proto::ticket_service_client::TicketServiceClient;
use ticketd::proto::{GetTicketRequest, ListPipelinesRequest, ListTicketsRequest, Ticket};
use tokio::task::JoinHandle;
use tonic::{Code, Response, Status, service::interceptor::InterceptedService};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::support::{Bearer, TEST_ADMIN, TestApp, admin_token, create_ticket_req, ticket};

both_databases!(
    a_client_trace_is_continued_by_the_server_span,
    shutdown_lets_an_in_flight_call_finish,
    shutdown_gives_up_on_calls_after_the_drain_timeout,
    healthcheck_subcommand_reports_a_serving_server,
    metrics_endpoint_counts_calls_by_method_and_code,
    calls_beyond_the_concurrency_limit_are_refused_at_once,
    a_client_deadline_ends_a_blocked_call_and_changes_nothing,
    requests_over_the_size_limit_are_refused,
);

/// Holds the tickets table so that ticket writes wait (reads do not): an exclusive transaction on SQLite, a
/// SHARE table lock on PostgreSQL. Released by [`release`].
async fn block_ticket_writes(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .expect("second connection to the test database");
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.execute_unprepared("BEGIN").await.expect("BEGIN");
            // SHARE blocks inserts and updates but not reads.
            db.execute_unprepared("LOCK TABLE tickets IN SHARE MODE")
                .await
                .expect("LOCK TABLE");
        }
        _ => {
            db.execute_unprepared("BEGIN EXCLUSIVE")
                .await
                .expect("BEGIN EXCLUSIVE");
        }
    }
    db
}

/// Returns once a ticket write of the server waits for [`block_ticket_writes`], so that a test acts on a call
/// the server holds rather than on one still on its way (a fixed pause is too short on a loaded machine).
async fn wait_until_a_write_waits(lock: &DatabaseConnection) {
    match lock.get_database_backend() {
        DbBackend::Postgres => {
            let waiting = "SELECT 1 FROM pg_locks l \
                WHERE NOT l.granted AND l.relation = 'tickets'::regclass \
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())";
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while lock
                .query_one_raw(Statement::from_string(DbBackend::Postgres, waiting))
                .await
                .expect("read pg_locks")
                .is_none()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no write of the server came to wait for the lock within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // SQLite's busy handler waits inside the server's process, where nothing outside can see it.
        _ => tokio::time::sleep(Duration::from_secs(1)).await,
    }
}

/// Starts a CreateTicket call in the background, where it can wait for [`block_ticket_writes`].
fn spawn_create(app: &TestApp, subject: &str) -> JoinHandle<Result<Response<Ticket>, Status>> {
    let mut client = app.tickets();
    let request = create_ticket_req(ticket(subject));
    tokio::spawn(async move { client.create_ticket(request).await })
}

/// Ends the transaction of [`block_ticket_writes`]: the writes waiting for it go on.
async fn release(db: DatabaseConnection) {
    db.execute_unprepared("COMMIT").await.expect("COMMIT");
    let _ = db.close().await;
}

async fn healthcheck_subcommand_reports_a_serving_server(app: TestApp) {
    let binary = env!("CARGO_BIN_EXE_ticketd");
    let serving = Command::new(binary)
        .args(["healthcheck", "--addr", &app.addr.to_string()])
        .output()
        .expect("run ticketd healthcheck");
    assert!(
        serving.status.success(),
        "healthcheck of a serving server: {serving:?}"
    );

    // A port nobody listens on: the check fails within its timeout instead of hanging.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let closed_addr = closed.local_addr().expect("its address");
    drop(closed);
    let down = Command::new(binary)
        .args([
            "healthcheck",
            "--addr",
            &closed_addr.to_string(),
            "--timeout-secs",
            "2",
        ])
        .output()
        .expect("run ticketd healthcheck");
    assert_eq!(
        down.status.code(),
        Some(1),
        "healthcheck of nothing: {down:?}"
    );
}

async fn metrics_endpoint_counts_calls_by_method_and_code(app: TestApp) {
    let database = app.database.clone();
    app.shutdown().await;
    let app = TestApp::start_with(database, |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    let metrics_addr = app.metrics_addr.expect("metrics endpoint bound");
    app.create_ticket(ticket("counted")).await;
    let missing = app
        .tickets()
        .get_ticket(ticket_id(987_654))
        .await
        .expect_err("unknown ticket");
    assert_eq!(missing.code(), Code::NotFound);

    let body = http_get(metrics_addr, "/metrics").await;
    for expected in [
        "ticketd_grpc_requests_total{method=\"/ticketd.v1.TicketService/CreateTicket\",code=\"Ok\"}",
        "ticketd_grpc_requests_total{method=\"/ticketd.v1.TicketService/GetTicket\",code=\"NotFound\"}",
        "ticketd_grpc_request_duration_seconds_bucket",
        "ticketd_grpc_requests_in_flight",
    ] {
        assert!(body.contains(expected), "metrics lack {expected}:\n{body}");
    }
    let not_found = http_get(metrics_addr, "/elsewhere").await;
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
}

/// A GetTicket request for `id`.
fn ticket_id(id: i64) -> ticketd::proto::GetTicketRequest {
    ticketd::proto::GetTicketRequest { id }
}

/// A minimal HTTP/1.1 GET, so the test needs no HTTP client crate.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the metrics endpoint");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    response
}

async fn calls_beyond_the_concurrency_limit_are_refused_at_once(app: TestApp) {
    let database = app.database.clone();
    app.shutdown().await;
    let app = TestApp::start_with(database, |config| config.max_concurrent_requests = 1).await;

    let lock = block_ticket_writes(&app.database.url).await;
    let blocked = spawn_create(&app, "waits for the lock");
    // The first call must hold the only slot before probing: a probe sent first would take the slot itself and
    // the first call would be the one refused.
    wait_until_a_write_waits(&lock).await;
    let mut refused = None;
    for _ in 0..100 {
        let mut pipelines = app.pipelines();
        let probe = pipelines.list_pipelines(ListPipelinesRequest::default());
        match tokio::time::timeout(Duration::from_secs(5), probe)
            .await
            .expect("a probe call is answered at once")
        {
            Err(status) if status.code() == Code::ResourceExhausted => {
                refused = Some(status);
                break;
            }
            other => {
                assert!(
                    !blocked.is_finished(),
                    "the first call waits for the table: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await
            }
        }
    }
    let refused = refused.expect("a second call is refused while the first holds the only slot");
    assert!(refused.message().contains("retry"), "{refused:?}");

    // Health is never shed: probes keep answering under load.
    let health = HealthClient::new(app.channel())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check while shedding");
    assert_eq!(health.into_inner().status, 1, "SERVING");

    release(lock).await;
    let created = blocked
        .await
        .expect("blocked call task")
        .expect("the first call completes once the table is free");
    assert_eq!(created.into_inner().subject, "waits for the lock");
    app.tickets()
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("calls are accepted again");
}

/// A TicketService client of the test admin that leaves deadlines to the server. tonic's channel ends a call
/// at its own `grpc-timeout` too, and usually first, so an answer through it would not show that the server
/// ended the call.
fn tickets_without_client_deadlines(
    app: &TestApp,
) -> TicketServiceClient<InterceptedService<Client<HttpConnector, tonic::body::Body>, Bearer>> {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let origin = format!("http://{}", app.addr)
        .parse()
        .expect("the server's origin");
    TicketServiceClient::with_origin(
        InterceptedService::new(client, Bearer::new(&admin_token(TEST_ADMIN))),
        origin,
    )
}

async fn a_client_deadline_ends_a_blocked_call_and_changes_nothing(app: TestApp) {
    let lock = block_ticket_writes(&app.database.url).await;
    let mut request = tonic::Request::new(create_ticket_req(ticket("too late")));
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = tickets_without_client_deadlines(&app)
        .create_ticket(request)
        .await
        .expect_err("the deadline passes while the table is locked");
    // The answer came from the server, so the call is over there: what it wrote can no longer commit.
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline ended the call, not the lock wait"
    );
    release(lock).await;
    let listed = app
        .tickets()
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(
        listed.tickets.iter().all(|t| t.subject != "too late"),
        "a call ended by its deadline must not commit"
    );
}

async fn requests_over_the_size_limit_are_refused(app: TestApp) {
    let database = app.database.clone();
    app.shutdown().await;
    let app = TestApp::start_with(database, |config| config.max_message_bytes = 1024).await;
    let status = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            content: "x".repeat(4096),
            ..ticket("too big")
        }))
        .await
        .expect_err("a 4 KiB request over a 1 KiB limit");
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    let small = app.create_ticket(ticket("small enough")).await;
    assert_eq!(small.subject, "small enough");
    let listed = app
        .tickets()
        .list_tickets(ListTicketsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        listed.tickets.len(),
        1,
        "the refused request created nothing"
    );
}

/// One in-memory span exporter for the whole test binary, behind the process-wide subscriber: servers run
/// on runtime worker threads, which a thread-local subscriber would not reach. Tests tell their spans apart
/// by trace id.
fn exported_spans() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_resource(ticketd::telemetry::resource())
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("ticketd-tests")));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        // The provider must outlive every test; the process ends with them.
        std::mem::forget(provider);
        exporter
    })
}

/// `message` as a call of the client trace `trace_id`, made inside the client's span `parent_span_id`.
fn traced<T>(message: T, trace_id: &str, parent_span_id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{parent_span_id}-01")
            .parse()
            .expect("traceparent metadata"),
    );
    request
}

/// The finished span of the trace `trace_id` whose name contains `method`, once exported (within 5 s).
async fn finished_span(
    exporter: &InMemorySpanExporter,
    trace_id: &str,
    method: &str,
) -> Option<SpanData> {
    // A server span is exported when it closes, just after the response is sent.
    for _ in 0..250 {
        let span = exporter
            .get_finished_spans()
            .expect("finished spans")
            .into_iter()
            .find(|span| {
                span.span_context.trace_id().to_string() == trace_id && span.name.contains(method)
            });
        if span.is_some() {
            return span;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The value of a span's attribute `key`, as text.
fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.to_string())
}

async fn a_client_trace_is_continued_by_the_server_span(app: TestApp) {
    let exporter = exported_spans();
    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let parent_span_id = "00f067aa0ba902b7";
    let request = create_ticket_req(ticket("traced"));
    app.tickets()
        .create_ticket(traced(request, &trace_id, parent_span_id))
        .await
        .expect("traced call");

    let server_span = finished_span(exporter, &trace_id, "CreateTicket")
        .await
        .expect("a server span in the client's trace");
    assert_eq!(
        server_span.parent_span_id.to_string(),
        parent_span_id,
        "the server span is a child of the client's span"
    );
    assert_eq!(
        server_span.span_kind,
        opentelemetry::trace::SpanKind::Server
    );
    assert_eq!(
        attribute(&server_span, "rpc.grpc.status_code").as_deref(),
        Some("Ok"),
        "{:?}",
        server_span.attributes
    );
    assert_eq!(
        attribute(&server_span, "enduser.id").as_deref(),
        Some(TEST_ADMIN),
        "the authenticated caller is on the span"
    );

    // A call addressing one ticket names it on its span.
    let created = app.create_ticket(ticket("traced by id")).await;
    let request = GetTicketRequest { id: created.id };
    app.tickets()
        .get_ticket(traced(request, &trace_id, parent_span_id))
        .await
        .expect("traced get");
    let get_span = finished_span(exporter, &trace_id, "GetTicket")
        .await
        .expect("a GetTicket span in the client's trace");
    assert_eq!(
        attribute(&get_span, "ticket.id"),
        Some(created.id.to_string()),
        "{:?}",
        get_span.attributes
    );
}

async fn shutdown_lets_an_in_flight_call_finish(app: TestApp) {
    let lock = block_ticket_writes(&app.database.url).await;
    let in_flight = spawn_create(&app, "in flight at shutdown");
    wait_until_a_write_waits(&lock).await;
    let database = app.database.clone();
    let stopping = tokio::spawn(app.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "the server waits for the call in flight"
    );
    release(lock).await;
    let created = in_flight
        .await
        .expect("call task")
        .expect("the call in flight completes during the shutdown")
        .into_inner();
    stopping.await.expect("shutdown task");

    // It really committed: a new server over the same database has it.
    let app = TestApp::start(database).await;
    let stored = app.get_ticket(created.id).await;
    assert_eq!(stored.subject, "in flight at shutdown");
    app.shutdown().await;
}

async fn shutdown_gives_up_on_calls_after_the_drain_timeout(app: TestApp) {
    let database = app.database.clone();
    app.shutdown().await;
    let app = TestApp::start_with(database, |config| {
        config.drain_timeout = Duration::from_secs(1);
    })
    .await;
    let lock = block_ticket_writes(&app.database.url).await;
    let stuck = spawn_create(&app, "stuck at shutdown");
    wait_until_a_write_waits(&lock).await;
    // Keeps the database (and so the lock's connection) alive past the server.
    let database = app.database.clone();
    let started = std::time::Instant::now();
    app.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the server stops about one drain timeout after the signal, not when the call ends"
    );
    // In a real process main() returns now and the abandoned call dies with it; here only the lock is left.
    release(lock).await;
    let _ = stuck.await;
    drop(database);
}
