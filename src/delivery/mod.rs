//! Webhook workers: claim due deliveries from the database queue, sign them (Standard Webhooks), POST them,
//! record every attempt, and schedule retries.
//!
//! Every replica runs one dispatcher that keeps up to [`concurrency`] attempts in flight. On PostgreSQL each
//! attempt holds its delivery's row lock (`FOR UPDATE SKIP LOCKED`, see `store::webhooks`) from the claim to
//! the recorded outcome, so replicas never send one delivery at once and a crashed replica's deliveries are
//! free again as soon as its connections drop. Delivery is therefore at least once (a crash after the receiver
//! answered and before the commit resends), normally exactly once; receivers dedupe on `webhook-id`.
//!
//! The dispatcher wakes when this process enqueues deliveries, and polls every [`POLL_INTERVAL`] for what other
//! replicas enqueued and for retries coming due.

mod resolver;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;
use tokio::{sync::watch, task::JoinSet};
use tracing::Instrument;

use crate::{
    domain::{
        Error, now,
        webhook::{Attempt, DeliveryStatus, FAILING_LIMIT, is_forbidden_ip, retry_delay, sign},
    },
    store::{AttemptOutcome, ClaimedDelivery, RESPONSE_KEPT_BYTES, Store},
};

/// How long an attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait between looks at the queue (other replicas' deliveries, retries coming due).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the queue depth and disabled webhooks are sampled into metrics.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Longest `Retry-After` honoured: a receiver cannot park a delivery for longer than the whole schedule.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

/// Attempts in flight per replica. On PostgreSQL each holds a pooled connection for up to
/// [`ATTEMPT_TIMEOUT`], so the number stays small beside the pool; SQLite's worker holds none while sending.
fn concurrency(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => 4,
        _ => 8,
    }
}

/// The running workers of this process.
pub struct Workers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Starts the dispatcher and the metrics sampler; they stop when `stopping` turns true (or its sender
    /// goes away).
    pub fn start(
        store: Store,
        allow_private_targets: bool,
        stopping: watch::Receiver<bool>,
    ) -> Result<Self, String> {
        let client = http_client(allow_private_targets)
            .map_err(|error| format!("cannot build the webhook HTTP client: {error}"))?;
        let dispatcher = Dispatcher {
            store: store.clone(),
            client,
            allow_private_targets,
        };
        let tasks = vec![
            tokio::spawn(until_stopped(stopping.clone(), dispatcher.run())),
            tokio::spawn(until_stopped(stopping, sample(store))),
        ];
        Ok(Self { tasks })
    }

    /// Stops every worker now; an attempt in flight is dropped (its delivery stays PENDING and is sent again).
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn until_stopped(mut stopping: watch::Receiver<bool>, work: impl Future<Output = ()>) {
    tokio::select! {
        _ = stopping.wait_for(|stopping| *stopping) => {}
        () = work => {}
    }
}

fn http_client(allow_private_targets: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        // A redirect would send the signed body somewhere the admin did not name (and past the URL check).
        .redirect(reqwest::redirect::Policy::none())
        // Resolution happens here, so a name cannot resolve to an internal address at delivery time (DNS
        // rebinding) after passing the check at create time.
        .dns_resolver(Arc::new(resolver::GuardedResolver::new(
            allow_private_targets,
        )))
        .user_agent(concat!("ticketd-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[derive(Clone)]
struct Dispatcher {
    store: Store,
    client: reqwest::Client,
    allow_private_targets: bool,
}

impl Dispatcher {
    async fn run(self) {
        let limit = concurrency(self.store.backend());
        let signal = self.store.delivery_signal();
        let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let mut attempts = JoinSet::new();
        loop {
            // Registered before looking, so a commit landing between the look and the wait still wakes us.
            let woken = signal.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            while attempts.len() < limit {
                let excluded: Vec<i64> = in_flight
                    .lock()
                    .map(|ids| ids.iter().copied().collect())
                    .unwrap_or_default();
                match self.store.claim_delivery(&excluded).await {
                    Ok(Some(claimed)) => {
                        if let Ok(mut ids) = in_flight.lock() {
                            ids.insert(claimed.id);
                        }
                        let this = self.clone();
                        let in_flight = Arc::clone(&in_flight);
                        attempts.spawn(async move {
                            let id = claimed.id;
                            this.deliver(claimed).await;
                            if let Ok(mut ids) = in_flight.lock() {
                                ids.remove(&id);
                            }
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "claiming a webhook delivery failed");
                        break;
                    }
                }
            }
            tokio::select! {
                Some(_) = attempts.join_next(), if !attempts.is_empty() => {}
                () = &mut woken => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// Makes one attempt at `claimed` and records it; failures to record are logged (the delivery stays
    /// PENDING and is attempted again).
    async fn deliver(&self, claimed: ClaimedDelivery) {
        let span = tracing::info_span!(
            "webhook.attempt",
            otel.kind = "client",
            webhook.id = claimed.webhook.id,
            webhook.delivery_id = claimed.id,
            webhook.event_id = claimed.event_id,
            ticket.id = claimed.ticket_id,
            http.response.status_code = tracing::field::Empty,
        );
        if let Some(cause) = crate::telemetry::span_context_of(&claimed.trace_parent) {
            tracing_opentelemetry::OpenTelemetrySpanExt::add_link(&span, cause);
        }
        async {
            let outcome = self.attempt(&claimed).await;
            tracing::Span::current()
                .record("http.response.status_code", outcome.attempt.http_status);
            record_metrics(&claimed, &outcome);
            let (delivery, status) = (claimed.id, outcome.status);
            match self.store.finish_delivery(claimed, outcome).await {
                Ok(()) => tracing::debug!(delivery, ?status, "webhook attempt recorded"),
                Err(error) => {
                    tracing::warn!(delivery, %error, "recording a webhook attempt failed")
                }
            }
        }
        .instrument(span)
        .await;
    }

    async fn attempt(&self, claimed: &ClaimedDelivery) -> AttemptOutcome {
        let attempt_time = now();
        let started = Instant::now();
        let answer = self.send(claimed, attempt_time).await;
        let duration = started.elapsed();
        decide(claimed, attempt_time, duration, answer)
    }

    async fn send(
        &self,
        claimed: &ClaimedDelivery,
        attempt_time: DateTime<Utc>,
    ) -> Result<Answer, String> {
        let event = claimed
            .event
            .clone()
            .ok_or_else(|| format!("event {} is gone", claimed.event_id))?;
        let body = crate::api::webhooks::delivery_body(&claimed.event_type, event)
            .map_err(|error| format!("the body could not be built: {error}"))?;
        let url = reqwest::Url::parse(&claimed.webhook.url)
            .map_err(|error| format!("the URL does not parse: {error}"))?;
        // Literal addresses never reach the resolver; the create-time check may have run under another setting.
        if !self.allow_private_targets
            && let Some(ip) = literal_ip(&url)
            && is_forbidden_ip(ip)
        {
            return Err(format!(
                "refused: {ip} is not a public address (--webhook-allow-private-targets is off)"
            ));
        }
        let message_id = claimed.event_id.to_string();
        let timestamp = attempt_time.timestamp();
        let signature = claimed
            .webhook
            .signing_secrets(attempt_time)
            .into_iter()
            .filter_map(|secret| sign(secret, &message_id, timestamp, &body))
            .collect::<Vec<_>>()
            .join(" ");
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| error_chain(&error))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, attempt_time));
        Ok(Answer {
            status: status.as_u16(),
            retry_after,
            body: first_bytes(response).await,
        })
    }
}

/// What the receiver answered.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

/// The outcome of an attempt: 2xx succeeds; 410 fails the delivery and disables the webhook; anything else
/// is retried on the schedule (sooner or later when a 429 or 503 says `Retry-After`) until it is used up or the
/// webhook has failed for [`FAILING_LIMIT`].
fn decide(
    claimed: &ClaimedDelivery,
    attempt_time: DateTime<Utc>,
    duration: Duration,
    answer: Result<Answer, String>,
) -> AttemptOutcome {
    let (http_status, response, retry_after) = match answer {
        Ok(answer) => (answer.status, answer.body, answer.retry_after),
        Err(reason) => (0, reason, None),
    };
    let attempt = Attempt {
        attempt_time,
        http_status: i32::from(http_status),
        duration,
        response,
    };
    let mut outcome = AttemptOutcome {
        attempt,
        status: DeliveryStatus::Failed,
        next_attempt_time: attempt_time,
        succeeded: false,
        disable: None,
    };
    if (200..300).contains(&http_status) {
        outcome.status = DeliveryStatus::Succeeded;
        outcome.succeeded = true;
        return outcome;
    }
    if http_status == 410 {
        outcome.disable = Some("the receiver answered 410 Gone".to_owned());
        return outcome;
    }
    let failing_since = claimed.failing_since.unwrap_or(attempt_time);
    if (attempt_time - failing_since).to_std().unwrap_or_default() >= FAILING_LIMIT {
        outcome.disable = Some(format!(
            "every attempt failed since {}",
            failing_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        return outcome;
    }
    let attempts = u32::try_from(claimed.attempt_count)
        .unwrap_or_default()
        .saturating_add(1);
    let Some(scheduled) = retry_delay(attempts) else {
        return outcome;
    };
    let wait = match retry_after {
        Some(asked) if matches!(http_status, 429 | 503) => asked.min(RETRY_AFTER_MAX),
        _ => scheduled,
    };
    outcome.status = DeliveryStatus::Pending;
    outcome.next_attempt_time =
        attempt_time + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
    outcome
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110), as a wait from `now`.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a valid RFC 2822 date.
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default())
}

/// The first KiB of the answer's body, as text.
async fn first_bytes(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_KEPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => {
                kept.extend_from_slice(format!(" [body cut off: {error}]").as_bytes());
                break;
            }
        }
    }
    kept.truncate(RESPONSE_KEPT_BYTES);
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    // A character cut at the KiB boundary shows as one replacement character; drop it.
    if text.ends_with('\u{fffd}') && kept.len() == RESPONSE_KEPT_BYTES {
        text.pop();
    }
    text
}

fn literal_ip(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(ip.into()),
        url::Host::Ipv6(ip) => Some(ip.into()),
        url::Host::Domain(_) => None,
    }
}

/// An error with its causes: reqwest's own message ("error sending request") says little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn record_metrics(claimed: &ClaimedDelivery, outcome: &AttemptOutcome) {
    let result = match (outcome.status, outcome.disable.is_some()) {
        (DeliveryStatus::Succeeded, _) => "succeeded",
        (DeliveryStatus::Pending, _) => "retrying",
        (DeliveryStatus::Failed, true) => "disabled",
        (DeliveryStatus::Failed, false) => "failed",
    };
    metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES, "outcome" => result).increment(1);
    metrics::histogram!(crate::metrics::WEBHOOK_ATTEMPT_DURATION)
        .record(outcome.attempt.duration.as_secs_f64());
    if outcome.succeeded
        && let Some(event) = &claimed.event
    {
        let latency = (outcome.attempt.attempt_time - event.create_time)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(crate::metrics::WEBHOOK_DELIVERY_LATENCY).record(latency.as_secs_f64());
    }
}

/// Samples the queue depth and the disabled webhooks into gauges.
async fn sample(store: Store) {
    let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let counts: Result<(u64, u64), Error> = async {
            Ok((
                store.pending_delivery_count().await?,
                store.disabled_webhook_count().await?,
            ))
        }
        .await;
        match counts {
            Ok((pending, disabled)) => {
                metrics::gauge!(crate::metrics::WEBHOOK_QUEUE_DEPTH).set(pending as f64);
                metrics::gauge!(crate::metrics::WEBHOOKS_DISABLED).set(disabled as f64);
            }
            Err(error) => tracing::debug!(%error, "sampling the webhook queue failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("1994-11-06T08:49:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
