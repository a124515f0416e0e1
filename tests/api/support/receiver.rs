//! A webhook receiver: a real HTTP server on `127.0.0.1:0` that records every request and answers each per a
//! scripted plan (then 200).

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::Notify};

/// How long a test waits for deliveries before failing.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The `webhook-id` header as the event id.
    pub fn event_id(&self) -> i64 {
        self.header("webhook-id")
            .parse()
            .expect("webhook-id is an event id")
    }

    /// A header's value, empty when absent.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: <value>`.
    RetryAfter(u16, &'static str),
    /// Never answers (until the client gives up).
    Hang,
}

/// The running receiver; it stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<Reply>>>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver that answers per `plan`, then 200 to everything.
    pub async fn start(plan: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let plan = Arc::new(Mutex::new(VecDeque::from(plan)));
        let arrived = Arc::new(Notify::new());
        let task = {
            let (received, plan, arrived) = (received.clone(), plan.clone(), arrived.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (received, plan, arrived) =
                        (received.clone(), plan.clone(), arrived.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                            let (received, plan, arrived) =
                                (received.clone(), plan.clone(), arrived.clone());
                            async move {
                                let at = Instant::now();
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                received.lock().unwrap().push(Received {
                                    headers: parts.headers,
                                    body,
                                    at,
                                });
                                arrived.notify_waiters();
                                let reply = plan
                                    .lock()
                                    .unwrap()
                                    .pop_front()
                                    .unwrap_or(Reply::Status(200));
                                let mut response =
                                    Response::new(Full::new(Bytes::from_static(b"thanks")));
                                match reply {
                                    Reply::Status(code) => {
                                        *response.status_mut() = code.try_into().unwrap();
                                    }
                                    Reply::RetryAfter(code, value) => {
                                        *response.status_mut() = code.try_into().unwrap();
                                        response
                                            .headers_mut()
                                            .insert("retry-after", value.parse().unwrap());
                                    }
                                    Reply::Hang => {
                                        tokio::time::sleep(Duration::from_secs(3600)).await
                                    }
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        Self {
            addr,
            received,
            plan,
            arrived,
            task,
        }
    }

    /// The URL webhooks should name.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests have arrived; panics after [`DELIVERY_TIMEOUT`].
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "expected {count} webhook requests within {DELIVERY_TIMEOUT:?}, got {}",
                    self.received().len()
                );
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
