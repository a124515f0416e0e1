//! The browser app (`web/`, see its README section "In the browser"), served on the gRPC port: its built bundle
//! in `web/dist/` is embedded in the binary, so `cargo run` serves it with nothing else installed.
//!
//! A layer outside every other one: a GET or HEAD that is not a gRPC call is answered here (the page's routes
//! with `index.html`, `/assets/…` with the bundle, anything else 404) and never reaches authentication, which
//! is for calls; everything else (gRPC, gRPC-Web, CORS preflights) goes on untouched.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;

/// The page every client-side route gets.
const INDEX_HTML: &[u8] = include_bytes!("../web/dist/index.html");

/// The bundle under `/assets/`: name, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 2] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/dist/assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/dist/assets/app.css"),
    ),
];

/// The page's own paths, all answered with `index.html` (the app routes in the browser).
fn is_page(path: &str) -> bool {
    let one_segment = |rest: &str| !rest.is_empty() && !rest.contains('/');
    match path {
        "/" | "/index.html" | "/cards" | "/tickets" => true,
        _ => path
            .strip_prefix("/cards/")
            .or_else(|| path.strip_prefix("/tickets/"))
            .is_some_and(one_segment),
    }
}

/// The answer to a request for the app, or `None` when the request is not one (a call, a preflight).
fn respond(
    method: &Method,
    path: &str,
    query: Option<&str>,
    content_type: Option<&[u8]>,
) -> Option<Response<Full<Bytes>>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    if content_type.is_some_and(|value| value.starts_with(b"application/grpc")) {
        return None;
    }
    let (status, content_type, cache, body): (_, &str, &str, &[u8]) = if is_page(path) {
        // Always revalidated, so a new binary's bundle is picked up at once.
        (
            StatusCode::OK,
            "text/html; charset=utf-8",
            "no-cache",
            INDEX_HTML,
        )
    } else if let Some((_, content_type, bytes)) = path
        .strip_prefix("/assets/")
        .and_then(|name| ASSETS.iter().find(|(asset, _, _)| *asset == name))
    {
        // index.html names each asset with `?v=<hash of its content>`: such a URL never changes meaning.
        let versioned =
            query.is_some_and(|query| query.split('&').any(|pair| pair.starts_with("v=")));
        let cache = if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        (StatusCode::OK, *content_type, cache, *bytes)
    } else {
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "no-cache",
            b"not found\n",
        )
    };
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from_static(body)
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Scripts and styles only from here; cards show images from anywhere, and the API may be on another origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src * data:; connect-src *; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    Some(response)
}

/// Serves the browser app in front of the gRPC services; `enabled = false` (`--web=false`) passes everything on.
#[derive(Debug, Clone, Copy)]
pub struct WebLayer {
    enabled: bool,
}

impl WebLayer {
    /// The layer; when not `enabled` it only passes requests on.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

impl<S> tower_layer::Layer<S> for WebLayer {
    type Service = Web<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Web {
            inner,
            enabled: self.enabled,
        }
    }
}

/// The service [`WebLayer`] wraps around the server.
#[derive(Debug, Clone)]
pub struct Web<S> {
    inner: S,
    enabled: bool,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for Web<S>
where
    S: tower_service::Service<http::Request<B>, Response = Response<tonic::body::Body>>,
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
        if self.enabled
            && let Some(response) = respond(
                request.method(),
                request.uri().path(),
                request.uri().query(),
                request
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .map(HeaderValue::as_bytes),
            )
        {
            return Box::pin(std::future::ready(Ok(response.map(tonic::body::Body::new))));
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<Response<Full<Bytes>>> {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        respond(&Method::GET, path, query, None)
    }

    fn header_of(response: &Response<Full<Bytes>>, name: header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    #[test]
    fn the_page_routes_get_index_html() {
        for path in ["/", "/cards/7", "/cards", "/tickets/12", "/index.html"] {
            let response = get(path).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        }
    }

    #[test]
    fn assets_have_their_content_type_and_versioned_ones_are_immutable() {
        let script = get("/assets/app.js?v=0123abcd").unwrap();
        assert_eq!(
            header_of(&script, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert!(header_of(&script, header::CACHE_CONTROL).contains("immutable"));
        let style = get("/assets/app.css").unwrap();
        assert_eq!(
            header_of(&style, header::CONTENT_TYPE),
            "text/css; charset=utf-8"
        );
        assert_eq!(header_of(&style, header::CACHE_CONTROL), "no-cache");
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in [
            "/nope",
            "/assets/other.js",
            "/cards/7/extra",
            "/tickets/",
            "/assets/",
        ] {
            assert_eq!(get(path).unwrap().status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn calls_and_other_methods_pass_through() {
        let grpc = Some(b"application/grpc-web+proto".as_slice());
        assert!(respond(&Method::GET, "/", None, grpc).is_none());
        assert!(
            respond(
                &Method::POST,
                "/ticketd.v1.TicketService/GetTicket",
                None,
                None
            )
            .is_none()
        );
        assert!(
            respond(
                &Method::OPTIONS,
                "/ticketd.v1.CardService/WatchCard",
                None,
                None
            )
            .is_none()
        );
    }
}
