//! The one place credentials are checked: every call but health and reflection is authenticated, its method
//! checked against [`super::policy`], and the [`Principal`] handed to the handler in the request extensions.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use super::{Authenticator, Principal, policy};

/// Authenticates and authorizes every call.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
}

impl AuthLayer {
    /// A layer checking calls with `authenticator`.
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Authenticator,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for Authenticate<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        // Probes and tooling must work without credentials.
        if crate::availability::is_infrastructure(&path) {
            return Box::pin(self.inner.call(request));
        }
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|value| value.as_bytes());
        let principal: Principal = match self.authenticator.authenticate(header) {
            Ok(principal) => principal,
            Err(rejection) => {
                tracing::debug!(%path, reason = rejection.message(), "call refused: unauthenticated");
                let status =
                    tonic::Status::unauthenticated(crate::api::error::echo(rejection.message()));
                return Box::pin(async move { Ok(status.into_http()) });
            }
        };
        if let Err(message) = policy::authorize(&principal, &path) {
            tracing::debug!(%path, caller = %principal.id, role = principal.role.as_str(), "call refused: permission denied");
            let status = tonic::Status::permission_denied(crate::api::error::echo(&message));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let span = tracing::Span::current();
        span.record("enduser.id", principal.id.as_str());
        span.record("enduser.role", principal.role.as_str());
        request.extensions_mut().insert(principal);
        Box::pin(self.inner.call(request))
    }
}
