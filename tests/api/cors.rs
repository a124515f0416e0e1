//! Cross-origin access (`--cors-allowed-origins`): preflights of listed origins answered before authentication,
//! gRPC-Web responses readable by the page, and nothing at all for other origins or when the flag is unset.
//! Spoken as raw HTTP/1.1, the way a browser's fetch reaches the server.

use std::net::SocketAddr;

use prost::Message;
use ticketd::{config::CorsOrigin, proto::GetTicketRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

both_databases!(
    a_preflight_from_an_allowed_origin_is_answered_without_credentials,
    a_preflight_from_another_origin_gets_no_cors_headers,
    a_grpc_web_call_from_an_allowed_origin_exposes_the_grpc_status,
    without_the_flag_no_response_carries_cors_headers,
);

const ALLOWED: &str = "https://desk.example.com";
const OTHER: &str = "https://evil.example.net";
const PATH: &str = "/ticketd.v1.TicketService/GetTicket";

/// A server allowing [`ALLOWED`] and a local development origin.
async fn with_cors(app: TestApp) -> TestApp {
    app.reconfigured(|config| {
        config.cors_allowed_origins = [ALLOWED, "http://localhost:5173"]
            .iter()
            .map(|origin| CorsOrigin::parse(origin).expect("a valid origin"))
            .collect();
    })
    .await
}

/// An HTTP/1.1 response's status and headers (names in lower case); the body is not read.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn cors_headers(&self) -> Vec<&(String, String)> {
        self.headers
            .iter()
            .filter(|(key, _)| key.starts_with("access-control-"))
            .collect()
    }

    /// The comma-separated values of `name`, lower-cased.
    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or_default()
            .split(',')
            .map(|item| item.trim().to_ascii_lowercase())
            .filter(|item| !item.is_empty())
            .collect()
    }
}

/// Sends one HTTP/1.1 request and reads the response's head.
async fn http1(addr: SocketAddr, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Head {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the test server");
    let mut request = format!("{method} {PATH} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    stream.write_all(body).await.expect("send the body");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let read = tokio::time::timeout(STREAM_TIMEOUT, stream.read(&mut buffer))
            .await
            .expect("the server answers in time")
            .expect("read the response");
        assert!(
            read > 0,
            "connection closed before the response head: {received:?}"
        );
        received.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Head { status, headers }
}

async fn preflight(app: &TestApp, origin: &str) -> Head {
    http1(
        app.addr,
        "OPTIONS",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent,authorization",
            ),
        ],
        &[],
    )
    .await
}

/// A gRPC-Web GetTicket call: one length-prefixed, uncompressed message.
async fn grpc_web_get_ticket(app: &TestApp, origin: &str, id: i64) -> Head {
    let message = GetTicketRequest { id }.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let authorization = format!("Bearer {}", admin_token(TEST_ADMIN));
    http1(
        app.addr,
        "POST",
        &[
            ("origin", origin),
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("authorization", &authorization),
        ],
        &body,
    )
    .await
}

async fn a_preflight_from_an_allowed_origin_is_answered_without_credentials(app: TestApp) {
    let app = with_cors(app).await;
    // The server checks credentials (the harness runs --auth jwt), and the preflight carries none.
    let head = preflight(&app, ALLOWED).await;
    assert!(
        matches!(head.status, 200 | 204),
        "preflight status {}: {:?}",
        head.status,
        head.headers
    );
    assert_eq!(head.get("access-control-allow-origin"), Some(ALLOWED));
    assert!(
        head.list("access-control-allow-methods")
            .contains(&"post".to_owned())
    );
    let allowed = head.list("access-control-allow-headers");
    for header in [
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "authorization",
    ] {
        assert!(
            allowed.contains(&header.to_owned()),
            "{header} not allowed: {allowed:?}"
        );
    }
    assert_eq!(
        preflight(&app, "http://localhost:5173")
            .await
            .get("access-control-allow-origin"),
        Some("http://localhost:5173"),
        "every listed origin"
    );
    app.shutdown().await;
}

async fn a_preflight_from_another_origin_gets_no_cors_headers(app: TestApp) {
    let app = with_cors(app).await;
    for origin in [
        OTHER,
        "https://desk.example.com.evil.net",
        "http://desk.example.com",
    ] {
        let head = preflight(&app, origin).await;
        assert!(
            head.cors_headers().is_empty(),
            "{origin}: {:?}",
            head.cors_headers()
        );
    }
    let call = grpc_web_get_ticket(&app, OTHER, 1).await;
    assert!(call.cors_headers().is_empty(), "{:?}", call.cors_headers());
    app.shutdown().await;
}

async fn a_grpc_web_call_from_an_allowed_origin_exposes_the_grpc_status(app: TestApp) {
    let app = with_cors(app).await;
    let created = app.create_ticket(ticket("seen from the browser")).await;

    let head = grpc_web_get_ticket(&app, ALLOWED, created.id).await;
    assert_eq!(head.status, 200, "{:?}", head.headers);
    assert!(
        head.get("content-type")
            .is_some_and(|value| value.starts_with("application/grpc-web")),
        "{:?}",
        head.headers
    );
    assert_eq!(head.get("access-control-allow-origin"), Some(ALLOWED));
    let exposed = head.list("access-control-expose-headers");
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(
            exposed.contains(&header.to_owned()),
            "{header} not exposed: {exposed:?}"
        );
    }

    // An error answered in the headers (a trailers-only response) is exposed the same way.
    let missing = grpc_web_get_ticket(&app, ALLOWED, 987_654).await;
    assert_eq!(missing.get("access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(
        missing.get("grpc-status"),
        Some("5"),
        "{:?}",
        missing.headers
    );
    app.shutdown().await;
}

async fn without_the_flag_no_response_carries_cors_headers(app: TestApp) {
    let created = app.create_ticket(ticket("no cors")).await;
    let head = preflight(&app, ALLOWED).await;
    assert!(head.cors_headers().is_empty(), "{:?}", head.cors_headers());
    let call = grpc_web_get_ticket(&app, ALLOWED, created.id).await;
    assert_eq!(call.status, 200, "{:?}", call.headers);
    assert!(call.cors_headers().is_empty(), "{:?}", call.cors_headers());
    app.shutdown().await;
}
