//! What the server does while the database is away: refuse calls at once with UNAVAILABLE and a `RetryInfo`
//! (instead of letting each wait out the pool's acquire timeout), and answer the calls already waiting as soon
//! as the outage is seen. Health and reflection keep answering: probes must be able to say NOT_SERVING.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use crate::store::DatabaseHealth;

/// Health checking and reflection: answered to anyone (no credentials), never shed, never refused for an
/// outage, so that probes and tooling work whatever state the server is in.
const INFRASTRUCTURE_PATHS: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Whether `path` is a health or reflection method (see [`INFRASTRUCTURE_PATHS`]).
pub fn is_infrastructure(path: &str) -> bool {
    INFRASTRUCTURE_PATHS
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

const OUTAGE_MESSAGE: &str = "the database is unreachable; retry with backoff";

/// Refuses ticketd's calls while the database is unreachable.
#[derive(Clone)]
pub struct DatabaseGateLayer {
    health: DatabaseHealth,
}

impl DatabaseGateLayer {
    /// Gates calls on `health`.
    pub fn new(health: DatabaseHealth) -> Self {
        Self { health }
    }
}

impl<S> tower_layer::Layer<S> for DatabaseGateLayer {
    type Service = DatabaseGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DatabaseGate {
            inner,
            health: self.health.clone(),
        }
    }
}

/// The service [`DatabaseGateLayer`] wraps around the routes.
#[derive(Clone)]
pub struct DatabaseGate<S> {
    inner: S,
    health: DatabaseHealth,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for DatabaseGate<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if is_infrastructure(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        if !self.health.is_up() {
            return Box::pin(async {
                Ok(crate::api::error::unavailable(OUTAGE_MESSAGE).into_http())
            });
        }
        let answer = self.inner.call(request);
        let mut health = self.health.clone();
        Box::pin(async move {
            // A call waiting on the database when the outage is seen would otherwise wait out the pool's
            // acquire timeout, or forever on a connection whose packets are dropped. Answering it drops its
            // work: a transaction that had not committed rolls back, and one whose COMMIT was in flight is
            // found by the client's retry with the same request id. A stream's call has already answered by
            // then; the stream itself ends through the event hub.
            tokio::select! {
                biased;
                response = answer => response,
                () = health.went_down() => Ok(crate::api::error::unavailable(OUTAGE_MESSAGE).into_http()),
            }
        })
    }
}
