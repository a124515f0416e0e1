//! Cross-origin access for browsers calling over gRPC-Web (`--cors-allowed-origins`).
//!
//! tower-http's CORS layer answers preflights and adds the response headers. It sits outside authentication, so a
//! preflight (which a browser never sends credentials with) is answered before any gRPC handling. A request
//! from an origin that is not listed, or with no `Origin` at all, bypasses it altogether and gets no CORS
//! header: tower-http would still add `access-control-expose-headers` and, to preflights, the allowed methods
//! and headers, telling a stranger what the server would accept from someone else.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::future::Either;
use http::{HeaderName, HeaderValue, Method, Request, Response, header};
use tower_http::cors::{AllowOrigin, Cors as TowerCors, CorsLayer as TowerCorsLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::CorsOrigin;

/// Request headers a gRPC-Web client (connect-web, grpc-web) sends.
const ALLOWED_HEADERS: [&str; 5] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
];
/// Trailers-as-headers a gRPC-Web client must read: without them a browser hides the call's status.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Adds CORS for the configured origins; with none configured it changes nothing.
#[derive(Clone)]
pub struct CorsLayer {
    origins: Arc<[HeaderValue]>,
    cors: TowerCorsLayer,
}

impl CorsLayer {
    /// CORS for exactly `origins`.
    pub fn new(origins: &[CorsOrigin]) -> Self {
        // A CorsOrigin was checked to be a valid header value when it was parsed; one that somehow is not
        // could never match a request's Origin anyway, so leaving it out changes nothing.
        let origins: Arc<[HeaderValue]> = origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin.as_str()).ok())
            .collect();
        let cors = TowerCorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::POST])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static));
        Self { origins, cors }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors {
            origins: Arc::clone(&self.origins),
            inner: self.cors.layer(inner),
        }
    }
}

/// See [`CorsLayer`].
#[derive(Clone)]
pub struct Cors<S> {
    origins: Arc<[HeaderValue]>,
    inner: TowerCors<S>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<<TowerCors<S> as Service<Request<ReqBody>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both paths end in the same inner service, which tower-http's polls.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let listed = request
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|origin| self.origins.contains(origin));
        if listed {
            Either::Left(self.inner.call(request))
        } else {
            Either::Right(self.inner.get_mut().call(request))
        }
    }
}
