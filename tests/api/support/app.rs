//! The server under test: [`TestApp`] starts a real `ticketd` on `127.0.0.1:0` over a [`TestDatabase`] and hands
//! out connected clients, plus shortcuts for the calls most tests make on the way to what they check.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use futures::StreamExt;
use ticketd::{
    Application,
    config::{AuthMode, ServeConfig},
    proto::{
        Agent, Association, BatchCreateTicketsRequest, Card, CardTemplate,
        CreateCardTemplateRequest, CreateTicketRequest, CreateWebhookRequest, Filter, FilterGroup,
        GetCardRequest, GetPipelineRequest, GetTicketRequest, ListAssociationsRequest,
        ListTicketHistoryRequest, ListTicketsRequest, ListWebhookDeliveriesRequest, Pipeline,
        Portal, PropertyDefinition, PropertyType, RenderCardRequest, RenderedCard,
        SearchTicketsRequest, SendCardRequest, Ticket, TicketEvent, UpdateCardPropertiesRequest,
        WatchCardRequest, WatchTicketsRequest, Webhook, WebhookDelivery,
        agent_service_client::AgentServiceClient,
        association_service_client::AssociationServiceClient,
        card_service_client::CardServiceClient, pipeline_service_client::PipelineServiceClient,
        portal_service_client::PortalServiceClient, property_service_client::PropertyServiceClient,
        rule_service_client::RuleServiceClient, ticket_service_client::TicketServiceClient,
        webhook_service_client::WebhookServiceClient,
    },
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Streaming, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::{
    Authed, Bearer, DatabaseProxy, TEST_ADMIN, TestDatabase, admin_token, create_agent_req,
    create_pipeline_req, create_portal_req, create_property_req, create_ticket_req, enable_jwt,
    every_association, every_event, every_match, every_ticket, ids, ok, open_stream, property_def,
    ticket, update_ticket_req,
};

/// The test servers' heartbeat interval unless a test sets one: longer than any test runs.
pub const NO_HEARTBEATS: Duration = Duration::from_secs(24 * 3600);

/// How long a server may take to stop after the shutdown signal before the test fails.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// A TicketService client whose calls carry a token.
pub type Tickets = TicketServiceClient<Authed>;

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

// ---------------------------------------------------------------------------------------------------------------
// Starting and stopping
// ---------------------------------------------------------------------------------------------------------------

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
        // Webhook tests receive on 127.0.0.1; the SSRF guard itself is tested with the setting turned off.
        config.webhook_allow_private_targets = true;
        // Stream tests count the messages they read, and a slow run can leave a stream silent for the default
        // 20 s: heartbeats only where a test asks for them ([`TestApp::with_stream_heartbeat`]).
        config.stream_heartbeat = NO_HEARTBEATS;
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

    /// A server over a fresh PostgreSQL database reached through a [`DatabaseProxy`] the test controls.
    pub async fn postgres_behind_proxy() -> (Self, DatabaseProxy) {
        let database = Arc::new(TestDatabase::postgres().await);
        let target = database.server_addr();
        let proxy = DatabaseProxy::start(target).await;
        let url = proxy.route(&database.url);
        let app = Self::start_with(database, |config| config.database.url = url).await;
        (app, proxy)
    }

    /// A second server over the same database (this one keeps running).
    pub async fn another_server(&self) -> TestApp {
        Self::start(self.database.clone()).await
    }

    /// A second server over the same database with its configuration adjusted by `configure`.
    pub async fn another_server_with(&self, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        Self::start_with(self.database.clone(), configure).await
    }

    /// Stops this server and starts a new one over the same database.
    pub async fn restart(self) -> TestApp {
        let database = self.database.clone();
        self.shutdown().await;
        Self::start(database).await
    }

    /// Stops this server and starts one over the same database with its configuration adjusted by `configure`.
    pub async fn reconfigured(self, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let database = self.database.clone();
        self.shutdown().await;
        Self::start_with(database, configure).await
    }

    /// Stops this server and starts one over the same database whose streams send a heartbeat after `every`
    /// of silence (`--stream-heartbeat-secs`).
    pub async fn with_stream_heartbeat(self, every: Duration) -> TestApp {
        self.reconfigured(|config| config.stream_heartbeat = every)
            .await
    }

    /// Stops this server and starts one with `--auth none` over the same database.
    pub async fn without_auth(self) -> TestApp {
        let database = self.database.clone();
        self.shutdown().await;
        Self::start_with(database, |config| {
            config.auth.mode = AuthMode::None;
        })
        .await
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
// Clients: the plain ones carry an admin token ([`TEST_ADMIN`]), the `_as` ones the token given
// ---------------------------------------------------------------------------------------------------------------

impl TestApp {
    /// The connected channel, without credentials.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A TicketService client of the test admin.
    pub fn tickets(&self) -> Tickets {
        self.tickets_as(&admin_token(TEST_ADMIN))
    }

    /// A PipelineService client of the test admin.
    pub fn pipelines(&self) -> PipelineServiceClient<Authed> {
        self.pipelines_as(&admin_token(TEST_ADMIN))
    }

    /// A PropertyService client of the test admin.
    pub fn properties(&self) -> PropertyServiceClient<Authed> {
        self.properties_as(&admin_token(TEST_ADMIN))
    }

    /// An AssociationService client of the test admin.
    pub fn associations(&self) -> AssociationServiceClient<Authed> {
        self.associations_as(&admin_token(TEST_ADMIN))
    }

    /// A CardService client of the test admin.
    pub fn cards(&self) -> CardServiceClient<Authed> {
        self.cards_as(&admin_token(TEST_ADMIN))
    }

    /// A PortalService client of the test admin.
    pub fn portals(&self) -> PortalServiceClient<Authed> {
        self.portals_as(&admin_token(TEST_ADMIN))
    }

    /// An AgentService client of the test admin.
    pub fn agents(&self) -> AgentServiceClient<Authed> {
        self.agents_as(&admin_token(TEST_ADMIN))
    }

    /// A WebhookService client of the test admin.
    pub fn webhooks(&self) -> WebhookServiceClient<Authed> {
        self.webhooks_as(&admin_token(TEST_ADMIN))
    }

    /// A WebhookService client whose calls carry `token`.
    pub fn webhooks_as(&self, token: &str) -> WebhookServiceClient<Authed> {
        WebhookServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// A TicketService client whose calls carry `token`.
    pub fn tickets_as(&self, token: &str) -> Tickets {
        TicketServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// A PipelineService client whose calls carry `token`.
    pub fn pipelines_as(&self, token: &str) -> PipelineServiceClient<Authed> {
        PipelineServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// A PropertyService client whose calls carry `token`.
    pub fn properties_as(&self, token: &str) -> PropertyServiceClient<Authed> {
        PropertyServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// An AssociationService client whose calls carry `token`.
    pub fn associations_as(&self, token: &str) -> AssociationServiceClient<Authed> {
        AssociationServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// A CardService client whose calls carry `token`.
    pub fn cards_as(&self, token: &str) -> CardServiceClient<Authed> {
        CardServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// A PortalService client whose calls carry `token`.
    pub fn portals_as(&self, token: &str) -> PortalServiceClient<Authed> {
        PortalServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// An AgentService client whose calls carry `token`.
    pub fn agents_as(&self, token: &str) -> AgentServiceClient<Authed> {
        AgentServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }

    /// A RuleService client of the test admin.
    pub fn rules(&self) -> RuleServiceClient<Authed> {
        self.rules_as(&admin_token(TEST_ADMIN))
    }

    /// A RuleService client whose calls carry `token`.
    pub fn rules_as(&self, token: &str) -> RuleServiceClient<Authed> {
        RuleServiceClient::with_interceptor(self.channel.clone(), Bearer::new(token))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Happy-path shortcuts: each panics with the status when the call fails
// ---------------------------------------------------------------------------------------------------------------

impl TestApp {
    /// Creates a ticket as the test admin.
    pub async fn create_ticket(&self, ticket: Ticket) -> Ticket {
        ok(self
            .tickets()
            .create_ticket(create_ticket_req(ticket))
            .await)
    }

    /// Creates tickets in one BatchCreateTickets call as the test admin.
    pub async fn batch_create_tickets(&self, requests: Vec<CreateTicketRequest>) -> Vec<Ticket> {
        let request = BatchCreateTicketsRequest {
            requests,
            request_id: String::new(),
            ..Default::default()
        };
        ok(self.tickets().batch_create_tickets(request).await).tickets
    }

    /// Reads a ticket as the test admin.
    pub async fn get_ticket(&self, id: i64) -> Ticket {
        ok(self.tickets().get_ticket(GetTicketRequest { id }).await)
    }

    /// Updates the fields of `ticket` named by `paths` (none: every field set) as the test admin.
    pub async fn update_ticket(&self, ticket: Ticket, paths: &[&str]) -> Ticket {
        ok(self
            .tickets()
            .update_ticket(update_ticket_req(ticket, paths))
            .await)
    }

    /// Creates a pipeline as the test admin.
    pub async fn create_pipeline(&self, pipeline: Pipeline) -> Pipeline {
        ok(self
            .pipelines()
            .create_pipeline(create_pipeline_req(pipeline))
            .await)
    }

    /// Reads a pipeline (0: the default one) as the test admin.
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

    /// Defines an optional custom property `name` of type `r#type`, labelled with its name.
    pub async fn define_property(&self, name: &str, r#type: PropertyType) -> PropertyDefinition {
        self.create_property(property_def(name, r#type)).await
    }

    /// Creates a custom property definition as the test admin.
    pub async fn create_property(&self, property: PropertyDefinition) -> PropertyDefinition {
        ok(self
            .properties()
            .create_property(create_property_req(property))
            .await)
    }

    /// Creates a card template as the test admin.
    pub async fn create_card_template(&self, request: CreateCardTemplateRequest) -> CardTemplate {
        ok(self.cards().create_card_template(request).await)
    }

    /// Sends a card as the test admin.
    pub async fn send_card(&self, request: SendCardRequest) -> Card {
        ok(self.cards().send_card(request).await)
    }

    /// Reads a card as the test admin.
    pub async fn get_card(&self, card_id: i64) -> Card {
        ok(self.cards().get_card(GetCardRequest { card_id }).await)
    }

    /// Renders a card as the test admin.
    pub async fn render_card(&self, card_id: i64) -> RenderedCard {
        ok(self
            .cards()
            .render_card(RenderCardRequest { card_id })
            .await)
    }

    /// Updates a card's properties as the test admin.
    pub async fn update_card(&self, request: UpdateCardPropertiesRequest) -> Card {
        ok(self.cards().update_card_properties(request).await)
    }

    /// Creates a portal as the test admin.
    pub async fn create_portal(&self, portal: Portal) -> Portal {
        ok(self
            .portals()
            .create_portal(create_portal_req(portal))
            .await)
    }

    /// Adds an agent to the directory as the test admin.
    pub async fn create_agent(&self, agent: Agent) -> Agent {
        ok(self.agents().create_agent(create_agent_req(agent)).await)
    }

    pub async fn create_webhook(&self, webhook: Webhook) -> Webhook {
        ok(self
            .webhooks()
            .create_webhook(CreateWebhookRequest {
                webhook: Some(webhook),
                request_id: String::new(),
            })
            .await)
    }

    /// Every delivery of a webhook (one page of up to 500), newest first.
    pub async fn deliveries(&self, webhook_id: i64) -> Vec<WebhookDelivery> {
        ok(self
            .webhooks()
            .list_webhook_deliveries(ListWebhookDeliveriesRequest {
                webhook_id,
                page_size: 500,
                ..Default::default()
            })
            .await)
        .deliveries
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reads of every page
// ---------------------------------------------------------------------------------------------------------------

impl TestApp {
    /// Every ticket of a query, following `next_page_token` to the end.
    pub async fn list_all_tickets(&self, request: ListTicketsRequest) -> Vec<Ticket> {
        every_ticket(&self.tickets(), request).await
    }

    /// How many tickets there are, archived ones included.
    pub async fn ticket_count(&self) -> usize {
        self.list_all_tickets(ListTicketsRequest {
            show_archived: true,
            ..Default::default()
        })
        .await
        .len()
    }

    /// Every match of a search, following `next_page_token` to the end.
    pub async fn search_all(&self, request: SearchTicketsRequest) -> Vec<Ticket> {
        every_match(&self.tickets(), request).await
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
        let request = ListAssociationsRequest {
            ticket_id,
            to_object_type: to_object_type.to_owned(),
            ..Default::default()
        };
        every_association(&self.associations(), request).await
    }

    /// A ticket's whole history, following the pages.
    pub async fn history(&self, ticket_id: i64) -> Vec<TicketEvent> {
        let request = ListTicketHistoryRequest {
            ticket_id,
            ..Default::default()
        };
        every_event(&self.tickets(), request).await
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

    /// Every event after `event_id`, in `event_id` order (what a watch resuming there must receive).
    pub async fn history_after(&self, event_id: i64) -> Vec<TicketEvent> {
        let mut events = self.all_history().await;
        events.retain(|e| e.event_id > event_id);
        events
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Health and reflection, asked without credentials
// ---------------------------------------------------------------------------------------------------------------

impl TestApp {
    /// The health status of `service` ("": the whole server).
    pub async fn health_status(&self, service: &str) -> ServingStatus {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        ok(HealthClient::new(self.channel()).check(request).await).status()
    }

    /// The services gRPC reflection v1 lists.
    pub async fn reflected_services_v1(&self) -> Vec<String> {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut client = ServerReflectionClient::new(self.channel());
        let mut responses = ok(client
            .server_reflection_info(futures::stream::iter([request]))
            .await);
        let response = responses
            .next()
            .await
            .expect("a v1 reflection response")
            .expect("v1 reflection succeeds without credentials");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!(
                "expected a list of services, got {:?}",
                response.message_response
            );
        };
        list.service.into_iter().map(|s| s.name).collect()
    }

    // The same conversation as v1's in the other generated API: v1alpha is what the stock grpcio-reflection
    // client speaks (tests/outside/check.py), so the server keeps serving it.
    /// The services gRPC reflection v1alpha lists.
    pub async fn reflected_services_v1alpha(&self) -> Vec<String> {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut client = ServerReflectionClient::new(self.channel());
        let mut responses = ok(client
            .server_reflection_info(futures::stream::iter([request]))
            .await);
        let response = responses
            .next()
            .await
            .expect("a v1alpha reflection response")
            .expect("v1alpha reflection succeeds without credentials");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!(
                "expected a list of services, got {:?}",
                response.message_response
            );
        };
        list.service.into_iter().map(|s| s.name).collect()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Streams, opened as the test admin
// ---------------------------------------------------------------------------------------------------------------

impl TestApp {
    /// Opens a WatchTickets stream; panics with the status when the call is refused.
    pub async fn watch(&self, request: WatchTicketsRequest) -> Streaming<TicketEvent> {
        let what = format!("WatchTickets {request:?}");
        let opened = open_stream(self.tickets().watch_tickets(request), &what).await;
        opened.unwrap_or_else(|status| panic!("{what}: expected OK, got {status:?}"))
    }

    /// Opens a WatchCard stream; panics with the status when the call is refused.
    pub async fn watch_card(&self, request: WatchCardRequest) -> Streaming<RenderedCard> {
        let what = format!("WatchCard {request:?}");
        let opened = open_stream(self.cards().watch_card(request), &what).await;
        opened.unwrap_or_else(|status| panic!("{what}: expected OK, got {status:?}"))
    }
}
