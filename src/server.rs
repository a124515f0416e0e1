//! Builds the gRPC server: ticketd's services, health and reflection (v1 and v1alpha) and gRPC-Web on one
//! port, with graceful shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::watch};
use tonic::{
    server::NamedService,
    service::{Routes, RoutesBuilder},
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tonic_web::GrpcWebLayer;

use crate::{
    api::caller::ViewerLayer,
    api::message_size::MessageSizeLayer,
    api::tickets::TicketRoutes,
    api::{
        agents::AgentApi, associations::AssociationApi, cards::CardApi, escalation::EscalationApi,
        pipelines::PipelineApi, portals::PortalApi, properties::PropertyApi, rules::RuleApi,
        tickets::TicketApi, webhooks::WebhookApi,
    },
    auth::{AuthLayer, Authenticator},
    availability::DatabaseGateLayer,
    config::{AuthMode, ServeConfig},
    cors::CorsLayer,
    delivery::Workers,
    error::{ServeError, StartupError},
    events::{EventHub, HubConfig},
    limits::ConcurrencyLimitLayer,
    metrics::GrpcMetricsLayer,
    proto::{
        self, agent_service_server::AgentServiceServer,
        association_service_server::AssociationServiceServer,
        card_service_server::CardServiceServer, escalation_service_server::EscalationServiceServer,
        pipeline_service_server::PipelineServiceServer, portal_service_server::PortalServiceServer,
        property_service_server::PropertyServiceServer, rule_service_server::RuleServiceServer,
        webhook_service_server::WebhookServiceServer,
    },
    store::{SqliteLock, Store},
    web::WebLayer,
};

/// Pings on idle connections keep long calls (and later, streams) alive through proxies and detect dead peers.
const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The health service name that answers SERVING for as long as the process serves, whatever the database's
/// state: for liveness probes. Restarting replicas because their database is away would only add a restart
/// storm to the outage; readiness (the server, "") is what follows the database.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Metadata a call may carry. Past it h2 refuses the headers itself, closing the whole connection when they span
/// several frames; hyper's default (16 KiB) did so for a merely oversized token. Far above that, so an
/// oversized credential reaches the auth layer, which answers that call alone UNAUTHENTICATED.
const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 1024 * 1024;

/// How often expired request ids are deleted.
const REQUEST_ID_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Deletes expired request ids now and then. Every replica runs it; the deletes are idempotent and cheap
/// thanks to the index on `create_time`.
async fn purge_request_ids(store: Store, ttl: Duration) {
    let mut interval = tokio::time::interval(REQUEST_ID_PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match store.purge_request_ids(ttl).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired request ids deleted"),
            Err(error) => tracing::warn!(%error, "deleting expired request ids failed"),
        }
    }
}

/// How often the database pool's usage is sampled into metrics.
const POOL_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

async fn sample_pool(store: Store) {
    let mut interval = tokio::time::interval(POOL_SAMPLE_INTERVAL);
    loop {
        interval.tick().await;
        let (size, idle) = store.pool_usage();
        metrics::gauge!(crate::metrics::DB_CONNECTIONS, "state" => "idle").set(idle as f64);
        metrics::gauge!(crate::metrics::DB_CONNECTIONS, "state" => "in_use")
            .set(size.saturating_sub(idle) as f64);
    }
}

/// ticketd's own gRPC services, routed with the request size limit, and their names for the health statuses.
/// Adding a service is one line here.
fn ticketd_services(
    store: &Store,
    hub: &Arc<EventHub>,
    config: &ServeConfig,
) -> (Routes, Vec<&'static str>) {
    let max_message = config.max_message_bytes as usize;
    let mut routes = RoutesBuilder::default();
    let mut names = Vec::new();
    // A macro rather than a generic function: `RoutesBuilder::add_service`'s bounds name axum types, and
    // ticketd does not depend on axum.
    macro_rules! serve {
        ($service:expr) => {{
            let service = $service.max_decoding_message_size(max_message);
            names.push(name_of(&service));
            routes.add_service(service);
        }};
    }
    let store = || store.clone();
    let hub = || Arc::clone(hub);
    serve!(TicketRoutes::new(TicketApi::new(store(), hub())));
    serve!(PipelineServiceServer::new(PipelineApi::new(store())));
    serve!(PropertyServiceServer::new(PropertyApi::new(store())));
    serve!(AssociationServiceServer::new(AssociationApi::new(store())));
    serve!(CardServiceServer::new(CardApi::new(store(), hub())));
    serve!(PortalServiceServer::new(PortalApi::new(store())));
    serve!(EscalationServiceServer::new(EscalationApi::new(store())));
    serve!(AgentServiceServer::new(AgentApi::new(store())));
    serve!(RuleServiceServer::new(RuleApi::new(store())));
    serve!(WebhookServiceServer::new(WebhookApi::new(
        store(),
        config.webhook_allow_private_targets
    )));
    (routes.routes(), names)
}

/// The gRPC name of `service`, e.g. `ticketd.v1.TicketService`.
fn name_of<S: NamedService>(_service: &S) -> &'static str {
    S::NAME
}

/// A migrated database and a bound socket, ready to serve.
pub struct Application {
    config: ServeConfig,
    authenticator: Authenticator,
    store: Store,
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_listener: Option<TcpListener>,
    metrics_addr: Option<SocketAddr>,
    /// Held while the server runs: SQLite is one replica.
    _sqlite_lock: Option<SqliteLock>,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listen address (port 0 picks a free port).
    pub async fn build(config: ServeConfig) -> Result<Self, StartupError> {
        // Checked before touching the database, so a bad credential setting fails in one clear line.
        let authenticator = Authenticator::from_config(&config.auth)?;
        if config.auth.mode == AuthMode::None {
            if !config.listen.ip().is_loopback() && !config.auth.allow_insecure_none {
                return Err(StartupError::InsecureAuthNone {
                    address: config.listen,
                });
            }
            tracing::warn!(
                address = %config.listen,
                "authentication is off (--auth none): every caller is an admin; use --auth jwt in production"
            );
        }
        // Bound before the database is touched, so a port already in use is reported at once, not after
        // migrations ran.
        let bind_error = |source| StartupError::Bind {
            address: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let (metrics_listener, metrics_addr) = match config.metrics_listen {
            None => (None, None),
            Some(address) => {
                let bind_error = |source| StartupError::Bind { address, source };
                let listener = TcpListener::bind(address).await.map_err(bind_error)?;
                let bound = listener.local_addr().map_err(bind_error)?;
                (Some(listener), Some(bound))
            }
        };
        // Before connecting: a second server on the same file is refused before it can migrate or write.
        let sqlite_lock = SqliteLock::acquire(&config.database.url)?;
        let store = Store::connect(&config.database.connect_settings())
            .await
            .map_err(StartupError::Database)?;
        store.migrate().await.map_err(StartupError::Migrate)?;
        Ok(Self {
            config,
            authenticator,
            store,
            _sqlite_lock: sqlite_lock,
            listener,
            local_addr,
            metrics_listener,
            metrics_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The metrics endpoint's address, when `--metrics-listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Serves until `shutdown` completes; then reports NOT_SERVING, stops accepting calls, lets in-flight
    /// calls finish for up to the drain timeout, and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                // google.rpc's error details (BadRequest, ErrorInfo, RetryInfo, ...), so grpcurl prints them.
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        // Older grpcurl and Python's grpcio-reflection only speak v1alpha.
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let (stopping_tx, mut stopping_rx) = watch::channel(false);
        // Streams watch the same flag: on shutdown they end with a resumable status, so the drain that
        // follows is not held up by clients that would otherwise stream forever.
        let hub = EventHub::start(
            self.store.clone(),
            HubConfig {
                heartbeat: self.config.stream_heartbeat,
                ..HubConfig::default()
            },
            stopping_rx.clone(),
        )
        .await
        .map_err(|error| ServeError::Events(error.to_string()))?;
        let (services, service_names) = ticketd_services(&self.store, &hub, &self.config);
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        for service in service_names.iter().chain([&LIVENESS_SERVICE]) {
            health_reporter
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        // Readiness follows the database: while it is unreachable every service reports NOT_SERVING, so that
        // load balancers and Kubernetes send calls to replicas that can answer them.
        let health_follower = {
            let health_reporter = health_reporter.clone();
            let service_names = service_names.clone();
            let mut health = self.store.health();
            let mut stopping = stopping_rx.clone();
            tokio::spawn(async move {
                loop {
                    let up = tokio::select! {
                        up = health.changed() => up,
                        _ = stopping.wait_for(|stopping| *stopping) => return,
                    };
                    let status = if up {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for service in std::iter::once("").chain(service_names.iter().copied()) {
                        health_reporter.set_service_status(service, status).await;
                    }
                }
            })
        };
        let prober = {
            let store = self.store.clone();
            let stopping = stopping_rx.clone();
            tokio::spawn(async move { store.probe_health(stopping).await })
        };
        let stop_following_health = health_follower.abort_handle();
        let signal = async move {
            shutdown.await;
            // Stopped first, so a database coming back during the drain cannot turn SERVING on again.
            stop_following_health.abort();
            tracing::info!(
                "shutdown requested: reporting NOT_SERVING and draining in-flight calls"
            );
            // "" is the whole server, which tonic-health reports SERVING from the start.
            for service in std::iter::once("").chain(service_names) {
                health_reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            let _ = stopping_tx.send(true);
        };

        let incoming = TcpIncoming::from(self.listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(HTTP2_KEEPALIVE_INTERVAL));
        let server = Server::builder()
            .accept_http1(true)
            // Outermost: a browser's preflight carries no credentials and is answered before anything else.
            .layer(CorsLayer::new(&self.config.cors_allowed_origins))
            // A client's shorter grpc-timeout wins over this default.
            .timeout(self.config.request_timeout)
            // Outermost: the browser app's GETs are answered before anything meant for calls sees them.
            .layer(WebLayer::new(self.config.web))
            .layer(GrpcMetricsLayer)
            .layer(ConcurrencyLimitLayer::new(
                self.config.max_concurrent_requests as usize,
            ))
            .layer(GrpcWebLayer::new())
            // Inside gRPC-Web, which hands it the translated bodies.
            .layer(MessageSizeLayer::new(
                self.config.max_message_bytes as usize,
            ))
            // Inside gRPC-Web, so browsers' calls are checked the same way once translated.
            .layer(AuthLayer::new(self.authenticator.clone()))
            // Behind authentication, so that a caller without credentials learns nothing of the database.
            .layer(DatabaseGateLayer::new(self.store.health()))
            // Behind authentication: it reads the principal the auth layer put in the request.
            .layer(ViewerLayer::new(self.store.clone()))
            .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
            .http2_max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
            .add_routes(services)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming, signal);

        let purger = tokio::spawn(purge_request_ids(
            self.store.clone(),
            self.config.request_id_ttl,
        ));
        let pool_sampler = tokio::spawn(sample_pool(self.store.clone()));
        // Delivery stops with the calls: an attempt cut off by the shutdown stays PENDING in the database and
        // is made again by another replica, or by this one after its restart.
        let webhook_workers = Workers::start(
            self.store.clone(),
            self.config.webhook_allow_private_targets,
            stopping_rx.clone(),
        )
        .map_err(ServeError::Webhooks)?;
        if let (Some(listener), Some(handle)) = (self.metrics_listener, crate::metrics::handle()) {
            tokio::spawn(crate::metrics::serve(listener, handle, stopping_rx.clone()));
        }
        tracing::info!(address = %self.local_addr, backend = ?self.store.backend(), "serving gRPC");
        let drain_timeout = self.config.drain_timeout;
        let drained = tokio::select! {
            served = server => {
                served?;
                true
            }
            _ = async {
                let _ = stopping_rx.wait_for(|stopping| *stopping).await;
                tokio::time::sleep(drain_timeout).await;
            } => {
                tracing::warn!(?drain_timeout, "drain timeout elapsed; abandoning calls still running");
                false
            }
        };
        purger.abort();
        pool_sampler.abort();
        webhook_workers.abort();
        health_follower.abort();
        prober.abort();
        // Closing the pool waits for every connection to come back; after an abandoned drain a stuck call may
        // hold one indefinitely, and the process is about to exit anyway.
        if drained && let Err(error) = self.store.close().await {
            tracing::warn!(%error, "closing database connections failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}
