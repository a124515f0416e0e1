//! The test harness: a real `ticketd` server on `127.0.0.1:0` over a fresh database (SQLite or PostgreSQL),
//! connected generated clients, request builders and assertions on `tonic::Status`.
#![allow(dead_code)]

use std::{collections::BTreeMap, fmt::Debug, net::SocketAddr, sync::Arc, time::Duration};

use prost_types::{FieldMask, Timestamp};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use tempfile::TempDir;
use ticketd::{
    Application,
    auth::credentials::{Claims, mint_hs256},
    config::ServeConfig,
    proto::{
        CreatePipelineRequest, CreateTicketRequest, GetPipelineRequest, GetTicketRequest,
        ListTicketsRequest, Pipeline, Stage, Ticket, TicketState, UpdateTicketRequest,
        pipeline_service_client::PipelineServiceClient, ticket_service_client::TicketServiceClient,
    },
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Response, Status, transport::Channel};
use tonic_types::StatusExt;

/// Admin connection used to create one PostgreSQL database per test.
pub const POSTGRES_URL_ENV: &str = "TICKETD_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long a server may take to stop after the shutdown signal before the test fails.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes every test once, as `async fn name(app: TestApp)`, and runs it against both databases:
/// `both_databases!(a, b)` generates `mod sqlite { #[tokio::test] async fn a() .. }` and `mod postgres { .. }`.
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::helpers::TestApp::sqlite().await).await
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::helpers::TestApp::postgres().await).await
                }
            )+
        }
    };
}

/// A database that lives as long as any server of the test uses it.
pub struct TestDatabase {
    pub url: String,
    kind: DatabaseKind,
}

enum DatabaseKind {
    /// The directory holding the SQLite file; deleted on drop.
    Sqlite(#[allow(dead_code)] TempDir),
    /// The admin URL and the name of the database to drop afterwards.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    async fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ticketd-test-")
            .tempdir()
            .expect("cannot create a temporary directory for the SQLite database");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ticketd.db").display()
        );
        Self {
            url,
            kind: DatabaseKind::Sqlite(dir),
        }
    }

    async fn postgres() -> Self {
        let admin_url =
            std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("ticketd_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL is unreachable at {admin_url} (set {POSTGRES_URL_ENV} to an admin URL of a running \
                 server): {err}"
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| {
                panic!("cannot create test database {name} through {admin_url}: {err}")
            });
        let _ = admin.close().await;
        let url = with_database_name(&admin_url, &name);
        Self {
            url,
            kind: DatabaseKind::Postgres { admin_url, name },
        }
    }
}

impl Drop for TestDatabase {
    /// Best effort: drops the PostgreSQL database (forcing out connections of servers still shutting down).
    fn drop(&mut self) {
        let DatabaseKind::Postgres { admin_url, name } = &self.kind else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop is synchronous and may run inside the test's runtime: use a thread with a runtime of its own.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = connect_admin(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// One admin connection, failing within seconds when PostgreSQL is down.
async fn connect_admin(admin_url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(admin_url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await
}

/// `postgres://user@host:5432/postgres?x=y` with the database replaced by `name`.
fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// A running server plus a connected channel. Stop it with [`TestApp::shutdown`]; dropping it stops it too.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics endpoint, when the configuration set `metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    pub database: Arc<TestDatabase>,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
}

impl TestApp {
    /// A server over a fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> Self {
        Self::start(Arc::new(TestDatabase::sqlite().await)).await
    }

    /// A server over a fresh PostgreSQL database; panics when PostgreSQL is unreachable.
    pub async fn postgres() -> Self {
        Self::start(Arc::new(TestDatabase::postgres().await)).await
    }

    /// Builds (connect, migrate, bind) and spawns a server over `database`.
    pub async fn start(database: Arc<TestDatabase>) -> Self {
        Self::start_with(database, |_| {}).await
    }

    /// Like [`TestApp::start`], with the configuration adjusted by `configure` first.
    pub async fn start_with(
        database: Arc<TestDatabase>,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut config = ServeConfig::new(listen, database.url.clone());
        // Every test server checks credentials unless the test turns that off; the default clients carry an
        // admin token.
        enable_jwt(&mut config);
        configure(&mut config);
        let app = Application::build(config).await.unwrap_or_else(|err| {
            panic!("Application::build failed for {}: {err:?}", database.url)
        });
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async move {
                let _ = rx.await;
            })
            .await
            .map_err(|err| format!("{err:?}"))
        });
        let channel = connect(addr)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the test server at {addr}: {err:?}"));
        Self {
            addr,
            metrics_addr,
            database,
            channel,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// A second server over the same database (this one keeps running).
    pub async fn another_server(&self) -> TestApp {
        Self::start(self.database.clone()).await
    }

    /// Stops this server and starts a new one over the same database.
    pub async fn restart(self) -> TestApp {
        let database = self.database.clone();
        self.shutdown().await;
        Self::start(database).await
    }

    /// Sends the shutdown signal and waits for `run_until_stopped` to return, which must be `Ok`.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let server = self.server.take().expect("server handle");
        let result = tokio::time::timeout(SHUTDOWN_TIMEOUT, server)
            .await
            .unwrap_or_else(|_| {
                panic!("server did not stop within {SHUTDOWN_TIMEOUT:?} after the shutdown signal")
            })
            .expect("server task panicked");
        assert_eq!(
            result,
            Ok(()),
            "run_until_stopped must return Ok after a graceful shutdown"
        );
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn tickets(&self) -> TicketServiceClient<Authed> {
        self.tickets_as(&admin_token(TEST_ADMIN))
    }

    pub fn pipelines(&self) -> PipelineServiceClient<Authed> {
        self.pipelines_as(&admin_token(TEST_ADMIN))
    }

    // Happy-path shortcuts: each panics with the status when the call fails.

    pub async fn create_ticket(&self, ticket: Ticket) -> Ticket {
        ok(self
            .tickets()
            .create_ticket(create_ticket_req(ticket))
            .await)
    }

    pub async fn get_ticket(&self, id: i64) -> Ticket {
        ok(self.tickets().get_ticket(GetTicketRequest { id }).await)
    }

    pub async fn update_ticket(&self, ticket: Ticket, paths: &[&str]) -> Ticket {
        ok(self
            .tickets()
            .update_ticket(update_ticket_req(ticket, paths))
            .await)
    }

    pub async fn create_pipeline(&self, pipeline: Pipeline) -> Pipeline {
        ok(self
            .pipelines()
            .create_pipeline(CreatePipelineRequest {
                pipeline: Some(pipeline),
                request_id: String::new(),
            })
            .await)
    }

    pub async fn get_pipeline(&self, id: i64) -> Pipeline {
        ok(self
            .pipelines()
            .get_pipeline(GetPipelineRequest { id })
            .await)
    }

    /// Creates `count` tickets one after the other, subjects "ticket 0", "ticket 1", ...
    pub async fn create_tickets(&self, count: usize) -> Vec<Ticket> {
        let mut created = Vec::with_capacity(count);
        for i in 0..count {
            created.push(self.create_ticket(ticket(&format!("ticket {i}"))).await);
        }
        created
    }

    /// Every ticket of a query, following `next_page_token` to the end.
    pub async fn list_all_tickets(&self, mut request: ListTicketsRequest) -> Vec<Ticket> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let page = ok(self.tickets().list_tickets(request.clone()).await);
            all.extend(page.tickets);
            if page.next_page_token.is_empty() {
                return all;
            }
            request.page_token = page.next_page_token;
        }
        panic!("ListTickets never returned an empty next_page_token");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that did not call `shutdown` (or panicked): stop the server without waiting.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A channel to a server, connected now.
pub async fn connect(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

// ---------------------------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------------------------

/// A ticket with only a subject: everything else defaulted by the server.
pub fn ticket(subject: &str) -> Ticket {
    Ticket {
        subject: subject.to_owned(),
        ..Default::default()
    }
}

/// A pipeline to create.
pub fn pipeline(label: &str, stages: Vec<Stage>) -> Pipeline {
    Pipeline {
        label: label.to_owned(),
        stages,
        ..Default::default()
    }
}

/// A stage to create (inside a pipeline, or with `pipeline_id` set for CreateStage).
pub fn stage(label: &str, state: TicketState, display_order: i32) -> Stage {
    Stage {
        label: label.to_owned(),
        state: state.into(),
        display_order,
        ..Default::default()
    }
}

/// A two-stage pipeline: "Open" (OPEN, order 1) then "Done" (CLOSED, order 2).
pub fn simple_pipeline(label: &str) -> Pipeline {
    pipeline(
        label,
        vec![
            stage("Open", TicketState::Open, 1),
            stage("Done", TicketState::Closed, 2),
        ],
    )
}

/// `None` for no paths (an empty mask), else a mask with those paths.
pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    if paths.is_empty() {
        None
    } else {
        Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    }
}

pub fn create_ticket_req(ticket: Ticket) -> CreateTicketRequest {
    CreateTicketRequest {
        ticket: Some(ticket),
        request_id: String::new(),
        associations: Vec::new(),
    }
}

pub fn update_ticket_req(ticket: Ticket, paths: &[&str]) -> UpdateTicketRequest {
    UpdateTicketRequest {
        ticket: Some(ticket),
        update_mask: mask(paths),
        request_id: String::new(),
    }
}

/// A fresh AIP-155 request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A set timestamp as `(seconds, nanos)`, comparable and printable; panics when unset.
#[track_caller]
pub fn time(timestamp: &Option<Timestamp>) -> (i64, i32) {
    let t = timestamp.expect("timestamp is not set");
    (t.seconds, t.nanos)
}

pub fn ids(tickets: &[Ticket]) -> Vec<i64> {
    tickets.iter().map(|t| t.id).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------------------------

/// The response of a call that must succeed.
#[track_caller]
pub fn ok<T>(result: Result<Response<T>, Status>) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!(
            "expected OK, got {:?}: {:?} (details: {:?})",
            status.code(),
            status.message(),
            status.get_details_bad_request()
        ),
    }
}

/// The status of a call that must fail with `code`.
#[track_caller]
pub fn assert_code<T: Debug>(result: Result<Response<T>, Status>, code: Code) -> Status {
    match result {
        Ok(response) => panic!("expected {code:?}, got OK: {:?}", response.into_inner()),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "unexpected status code; message: {:?}",
                status.message()
            );
            status
        }
    }
}

/// A `google.rpc.BadRequest` field violation naming exactly `field`, which the message mentions too.
#[track_caller]
pub fn assert_field_violation(status: &Status, field: &str) {
    let bad_request = status.get_details_bad_request().unwrap_or_else(|| {
        panic!(
            "status {:?} {:?} carries no google.rpc.BadRequest details",
            status.code(),
            status.message()
        )
    });
    assert!(
        bad_request
            .field_violations
            .iter()
            .any(|v| v.field == field),
        "expected a field violation for {field:?}, got {:?} (message: {:?})",
        bad_request.field_violations,
        status.message()
    );
    assert!(
        status.message().contains(field),
        "status message {:?} does not mention the field {field:?}",
        status.message()
    );
}

/// INVALID_ARGUMENT with a field violation for `field`.
#[track_caller]
pub fn assert_invalid<T: Debug>(result: Result<Response<T>, Status>, field: &str) -> Status {
    let status = assert_code(result, Code::InvalidArgument);
    assert_field_violation(&status, field);
    status
}

// ---------------------------------------------------------------------------------------------------------------
// Custom properties, search, associations, comments and history
// ---------------------------------------------------------------------------------------------------------------

use ticketd::proto::{
    Association, AssociationSpec, CreatePropertyRequest, Filter, FilterGroup, FilterOperator,
    ListAssociationsRequest, ListTicketHistoryRequest, ObjectRef, PropertyDefinition, PropertyType,
    SearchTicketsRequest, TicketEvent, association_service_client::AssociationServiceClient,
    property_service_client::PropertyServiceClient,
};

impl TestApp {
    pub fn properties(&self) -> PropertyServiceClient<Authed> {
        self.properties_as(&admin_token(TEST_ADMIN))
    }

    pub fn associations(&self) -> AssociationServiceClient<Authed> {
        self.associations_as(&admin_token(TEST_ADMIN))
    }

    /// Defines an optional custom property `name` of type `r#type`, labelled with its name.
    pub async fn define_property(&self, name: &str, r#type: PropertyType) -> PropertyDefinition {
        self.create_property(property_def(name, r#type)).await
    }

    pub async fn create_property(&self, property: PropertyDefinition) -> PropertyDefinition {
        ok(self
            .properties()
            .create_property(CreatePropertyRequest {
                property: Some(property),
                request_id: String::new(),
            })
            .await)
    }

    /// Every match of a search, following `next_page_token` to the end.
    pub async fn search_all(&self, mut request: SearchTicketsRequest) -> Vec<Ticket> {
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let page = ok(self.tickets().search_tickets(request.clone()).await);
            all.extend(page.tickets);
            if page.next_page_token.is_empty() {
                return all;
            }
            request.page_token = page.next_page_token;
        }
        panic!("SearchTickets never returned an empty next_page_token");
    }

    /// Ids of every ticket matching one group of filters (id order).
    pub async fn search_ids(&self, filters: Vec<Filter>) -> Vec<i64> {
        ids(&self
            .search_all(SearchTicketsRequest {
                filter_groups: vec![FilterGroup { filters }],
                ..Default::default()
            })
            .await)
    }

    /// Every association of a ticket (optionally to one object type), following the pages.
    pub async fn list_all_associations(
        &self,
        ticket_id: i64,
        to_object_type: &str,
    ) -> Vec<Association> {
        let mut request = ListAssociationsRequest {
            ticket_id,
            to_object_type: to_object_type.to_owned(),
            ..Default::default()
        };
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let page = ok(self.associations().list_associations(request.clone()).await);
            all.extend(page.associations);
            if page.next_page_token.is_empty() {
                return all;
            }
            request.page_token = page.next_page_token;
        }
        panic!("ListAssociations never returned an empty next_page_token");
    }

    /// A ticket's whole history, following the pages.
    pub async fn history(&self, ticket_id: i64) -> Vec<TicketEvent> {
        let mut request = ListTicketHistoryRequest {
            ticket_id,
            ..Default::default()
        };
        let mut all = Vec::new();
        for _ in 0..10_000 {
            let page = ok(self.tickets().list_ticket_history(request.clone()).await);
            all.extend(page.events);
            if page.next_page_token.is_empty() {
                return all;
            }
            request.page_token = page.next_page_token;
        }
        panic!("ListTicketHistory never returned an empty next_page_token");
    }
}

/// An optional property definition to create, labelled with its name.
pub fn property_def(name: &str, r#type: PropertyType) -> PropertyDefinition {
    PropertyDefinition {
        name: name.to_owned(),
        label: name.to_owned(),
        r#type: r#type.into(),
        ..Default::default()
    }
}

/// `message` sent by an agent named `actor` (its token's `sub`).
pub fn with_actor<T>(message: T, actor: &str) -> tonic::Request<T> {
    with_token(message, &agent_token(actor))
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII token"),
    );
    request
}

// ---------------------------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------------------------

/// The HS256 secret of servers started in JWT mode.
pub const TEST_JWT_SECRET: &str = "ticketd-integration-tests-hs256-secret-0123456789";

/// Switches a configuration to `--auth jwt` with [`TEST_JWT_SECRET`].
pub fn enable_jwt(config: &mut ServeConfig) {
    config.auth.mode = ticketd::config::AuthMode::Jwt;
    config.auth.jwt_hs256_secret = Some(TEST_JWT_SECRET.to_owned());
}

/// A token signed with [`TEST_JWT_SECRET`], valid for an hour unless `claims.exp` is set.
pub fn token(mut claims: Claims) -> String {
    if claims.exp == 0 {
        claims.exp = chrono::Utc::now().timestamp() + 3600;
    }
    mint_hs256(TEST_JWT_SECRET.as_bytes(), &claims).expect("signing a test token")
}

fn claims(sub: &str, role: &str) -> Claims {
    Claims {
        sub: sub.to_owned(),
        role: role.to_owned(),
        ..Default::default()
    }
}

pub fn admin_token(sub: &str) -> String {
    token(claims(sub, "admin"))
}

pub fn agent_token(sub: &str) -> String {
    token(claims(sub, "agent"))
}

/// A service token holding `scopes` (e.g. `tickets:read`).
pub fn service_token(sub: &str, scopes: &[&str]) -> String {
    token(Claims {
        scope: scopes.join(" "),
        ..claims(sub, "service")
    })
}

/// A customer of organization `org` (empty: none) signed in through `portal`.
pub fn customer_token(sub: &str, org: &str, portal: i64) -> String {
    token(Claims {
        org: org.to_owned(),
        portal: Some(portal),
        ..claims(sub, "customer")
    })
}

/// Adds `authorization: Bearer <token>` to every call of a client.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    /// A token set on the request itself (see [`with_token`]) wins over the client's.
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if !request.metadata().contains_key("authorization") {
            request
                .metadata_mut()
                .insert("authorization", self.0.clone());
        }
        Ok(request)
    }
}

/// The caller of the default clients.
pub const TEST_ADMIN: &str = "test-admin";

/// The default clients' interceptor, for clients over channels of their own.
pub fn admin_bearer() -> Bearer {
    Bearer(
        format!("Bearer {}", admin_token(TEST_ADMIN))
            .parse()
            .expect("ASCII token"),
    )
}

/// A channel whose calls carry a token.
pub type Authed = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

impl TestApp {
    /// Stops this server and starts one with `--auth none` over the same database.
    pub async fn without_auth(self) -> TestApp {
        let database = self.database.clone();
        self.shutdown().await;
        Self::start_with(database, |config| {
            config.auth.mode = ticketd::config::AuthMode::None;
        })
        .await
    }

    fn bearer(&self, token: &str) -> Bearer {
        Bearer(format!("Bearer {token}").parse().expect("ASCII token"))
    }

    pub fn tickets_as(&self, token: &str) -> TicketServiceClient<Authed> {
        TicketServiceClient::with_interceptor(self.channel.clone(), self.bearer(token))
    }

    pub fn pipelines_as(&self, token: &str) -> PipelineServiceClient<Authed> {
        PipelineServiceClient::with_interceptor(self.channel.clone(), self.bearer(token))
    }

    pub fn properties_as(
        &self,
        token: &str,
    ) -> ticketd::proto::property_service_client::PropertyServiceClient<Authed> {
        ticketd::proto::property_service_client::PropertyServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer(token),
        )
    }

    pub fn associations_as(
        &self,
        token: &str,
    ) -> ticketd::proto::association_service_client::AssociationServiceClient<Authed> {
        ticketd::proto::association_service_client::AssociationServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer(token),
        )
    }

    pub fn cards_as(
        &self,
        token: &str,
    ) -> ticketd::proto::card_service_client::CardServiceClient<Authed> {
        ticketd::proto::card_service_client::CardServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer(token),
        )
    }

    pub fn portals_as(
        &self,
        token: &str,
    ) -> ticketd::proto::portal_service_client::PortalServiceClient<Authed> {
        ticketd::proto::portal_service_client::PortalServiceClient::with_interceptor(
            self.channel.clone(),
            self.bearer(token),
        )
    }
}

/// A search filter with a single `value`.
pub fn filter(property: &str, operator: FilterOperator, value: &str) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: operator.into(),
        value: value.to_owned(),
        ..Default::default()
    }
}

/// A search filter with `values` (IN, NOT_IN).
pub fn filter_in(property: &str, operator: FilterOperator, values: &[&str]) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: operator.into(),
        values: strings(values),
        ..Default::default()
    }
}

/// A BETWEEN filter, both ends inclusive.
pub fn filter_between(property: &str, low: &str, high: &str) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: FilterOperator::Between.into(),
        value: low.to_owned(),
        high_value: high.to_owned(),
        ..Default::default()
    }
}

pub fn object(object_type: &str, object_id: &str) -> ObjectRef {
    ObjectRef {
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
    }
}

/// A link to make; `association_type_id` 0 is the default system type.
pub fn link(object_type: &str, object_id: &str, association_type_id: i64) -> AssociationSpec {
    AssociationSpec {
        to: Some(object(object_type, object_id)),
        association_type_id,
    }
}

/// RFC 3339 (UTC, nanoseconds) form of a set timestamp.
#[track_caller]
pub fn rfc3339(timestamp: &Option<Timestamp>) -> String {
    let t = timestamp.expect("timestamp is not set");
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .expect("timestamp in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The sorted, de-duplicated ids.
pub fn sorted_ids(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

// ---------------------------------------------------------------------------------------------------------------
// Streams (WatchTickets, WatchCard) and cards
// ---------------------------------------------------------------------------------------------------------------

use ticketd::proto::{WatchTicketsRequest, card_service_client::CardServiceClient};
use tonic::Streaming;

/// How long a test waits for one message of a stream before failing (instead of hanging).
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The trailer of a WatchTickets stream that ends with UNAVAILABLE.
pub const RESUME_TRAILER: &str = "ticketd-resume-after-event-id";

/// The Kaizala card package the card tests load, kept in the repository so that the tests need nothing outside
/// it.
pub const KAIZALA_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kaizala");

impl TestApp {
    pub fn cards(&self) -> CardServiceClient<Authed> {
        self.cards_as(&admin_token(TEST_ADMIN))
    }

    /// Opens a WatchTickets stream; panics with the status when the call is refused.
    pub async fn watch(&self, request: WatchTicketsRequest) -> Streaming<TicketEvent> {
        let mut client = self.tickets();
        let call = client.watch_tickets(request.clone());
        match tokio::time::timeout(STREAM_TIMEOUT, call).await {
            Ok(result) => ok(result),
            Err(_) => panic!("WatchTickets {request:?} did not answer within {STREAM_TIMEOUT:?}"),
        }
    }

    /// The id of a ticket's latest event (from ListTicketHistory).
    pub async fn last_event_id(&self, ticket_id: i64) -> i64 {
        self.history(ticket_id)
            .await
            .last()
            .unwrap_or_else(|| panic!("ticket {ticket_id} has no history"))
            .event_id
    }

    /// Every event of every ticket (archived ones included), in `event_id` order, from ListTicketHistory.
    pub async fn all_history(&self) -> Vec<TicketEvent> {
        let tickets = self
            .list_all_tickets(ListTicketsRequest {
                page_size: 500,
                show_archived: true,
                ..Default::default()
            })
            .await;
        let mut events = Vec::new();
        for t in tickets {
            events.extend(self.history(t.id).await);
        }
        events.sort_by_key(|e| e.event_id);
        events
    }
}

/// A watch of every ticket replaying after `after_event_id` (0: live only).
pub fn watch_all(after_event_id: i64) -> WatchTicketsRequest {
    WatchTicketsRequest {
        after_event_id,
        ..Default::default()
    }
}

/// The next item of a stream: `Ok(Some(message))`, `Ok(None)` at a clean end, `Err(status)` at an error end.
/// Panics when nothing arrives within [`STREAM_TIMEOUT`].
pub async fn next_item<T>(stream: &mut Streaming<T>, what: &str) -> Result<Option<T>, Status> {
    match tokio::time::timeout(STREAM_TIMEOUT, stream.message()).await {
        Ok(item) => item,
        Err(_) => panic!("{what}: nothing arrived within {STREAM_TIMEOUT:?}"),
    }
}

/// The next message, which must arrive within [`STREAM_TIMEOUT`].
pub async fn next_message<T>(stream: &mut Streaming<T>, what: &str) -> T {
    match next_item(stream, what).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("{what}: the stream ended (OK) instead of sending a message"),
        Err(status) => panic!(
            "{what}: the stream ended with {:?} {:?} instead of sending a message",
            status.code(),
            status.message()
        ),
    }
}

/// The next `count` messages.
pub async fn next_messages<T>(stream: &mut Streaming<T>, count: usize, what: &str) -> Vec<T> {
    let mut messages = Vec::with_capacity(count);
    for i in 0..count {
        messages
            .push(next_message(stream, &format!("{what} (message {} of {count})", i + 1)).await);
    }
    messages
}

/// The value of the resume trailer of an UNAVAILABLE status; panics when it is missing or not a number.
#[track_caller]
pub fn resume_after(status: &Status) -> i64 {
    let value = status.metadata().get(RESUME_TRAILER).unwrap_or_else(|| {
        panic!(
            "status {:?} {:?} carries no {RESUME_TRAILER} trailer (metadata: {:?})",
            status.code(),
            status.message(),
            status.metadata()
        )
    });
    let text = value
        .to_str()
        .unwrap_or_else(|_| panic!("{RESUME_TRAILER} is not ASCII: {value:?}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{RESUME_TRAILER} is not an event id: {text:?}"))
}

/// Reads a stream to its end, which must be UNAVAILABLE with the resume trailer: the messages that came
/// first and the trailer's event id.
pub async fn read_until_unavailable(
    stream: &mut Streaming<TicketEvent>,
    what: &str,
) -> (Vec<TicketEvent>, i64) {
    let mut events = Vec::new();
    loop {
        match next_item(stream, what).await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => panic!(
                "{what}: the stream ended with OK after {} events; expected UNAVAILABLE with {RESUME_TRAILER}",
                events.len()
            ),
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "{what}: the stream must end with UNAVAILABLE (message {:?}, after {} events)",
                    status.message(),
                    events.len()
                );
                let resume = resume_after(&status);
                return (events, resume);
            }
        }
    }
}

/// The event ids, in the order received.
pub fn event_ids(events: &[TicketEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event_id).collect()
}

/// Panics unless the ids strictly increase (no repeat, no reordering).
#[track_caller]
pub fn assert_strictly_increasing(ids: &[i64], what: &str) {
    for (i, pair) in ids.windows(2).enumerate() {
        assert!(
            pair[1] > pair[0],
            "{what}: event ids must strictly increase, got {} then {} at positions {i}, {}",
            pair[0],
            pair[1],
            i + 1
        );
    }
}

/// A file of the Kaizala fixture package, as text.
pub fn kaizala_fixture(name: &str) -> String {
    let path = format!("{KAIZALA_FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read fixture {path}: {err}"))
}
