//! `webhooks`: deliveries per second to a local receiver. Starts a bare HTTP/1.1 receiver on 127.0.0.1 that
//! answers 204 at once, subscribes a webhook to every event type, creates `--deliveries` tickets with
//! BatchCreateTickets (100 per call, `--concurrency` calls at once), and times from the first create to the
//! last distinct `webhook-id` received. The server must run with `--webhook-allow-private-targets`.

use std::{
    collections::HashSet,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use ticketd::proto::{CreateWebhookRequest, Webhook, webhook_service_client::WebhookServiceClient};
use tokio::{net::TcpListener, sync::Notify};

use crate::{args::Args, scenarios::Conn, seed::create_in_batches};

pub async fn deliveries(args: &Args, channels: &[Conn]) -> Result<(), Box<dyn std::error::Error>> {
    let total = args.deliveries;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let done = Arc::new(Notify::new());
    let receiver = {
        let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
                        async move {
                            let id = request
                                .headers()
                                .get("webhook-id")
                                .and_then(|id| id.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let count = {
                                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                                seen.insert(id);
                                seen.len()
                            };
                            if count >= total {
                                done.notify_one();
                            }
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(204)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap_or_default(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    WebhookServiceClient::new(channels[0].clone())
        .create_webhook(CreateWebhookRequest {
            webhook: Some(Webhook {
                url,
                event_types: vec!["ticket.created".to_owned()],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?;

    let started = Instant::now();
    // A quarter of the seeded tickets start in a CLOSED stage, which notifies nobody unless asked: ask, so
    // every ticket is delivered.
    let notify_all = ticketd::proto::SideEffects {
        notify: ticketd::proto::Notify::All.into(),
        skip_automations: false,
    };
    create_in_batches(channels, total, args.concurrency, Some(notify_all)).await?;
    let created = started.elapsed();
    let finished = tokio::time::timeout(Duration::from_secs(600), done.notified()).await;
    let elapsed = started.elapsed();
    receiver.abort();
    let delivered = seen.lock().map(|seen| seen.len()).unwrap_or_default();
    if finished.is_err() {
        println!(
            "timed out: {delivered} of {total} deliveries in {:.1}s",
            elapsed.as_secs_f64()
        );
        return Ok(());
    }
    println!(
        "webhooks: {total} tickets created in {:.2}s; {delivered} deliveries received in {:.2}s: {:.0} deliveries/s",
        created.as_secs_f64(),
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
