//! The database going away under a running server (issue 16, items 1 and 2), on PostgreSQL through a
//! [`DatabaseProxy`] the test cuts, holds and restores. What a client must see: health NOT_SERVING while the
//! database is unreachable, calls answered at once with UNAVAILABLE and a `RetryInfo` (never INTERNAL, never a
//! wait for the pool's timeout), streams ending with UNAVAILABLE and the resume trailer, and everything
//! working again on its own once the database is back, with no acknowledged write lost or doubled. SQLite
//! is a file inside the process and has no connection to lose; its side of the mapping is in
//! `database_errors.rs`.

use std::time::{Duration, Instant};

use ticketd::proto::{CreateTicketRequest, GetTicketRequest};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_types::StatusExt;

use crate::support::*;

/// How long the server may take to notice an outage or a recovery: the probe asks every second and gives up
/// after two; the rest is slack for a loaded machine.
const NOTICE_WITHIN: Duration = Duration::from_secs(15);

/// The pool's acquire timeout: a call that waits this long was not answered "at once".
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Polls health until `service` reports `wanted`, failing after [`NOTICE_WITHIN`].
async fn wait_for_health(app: &TestApp, service: &str, wanted: ServingStatus) {
    let deadline = Instant::now() + NOTICE_WITHIN;
    loop {
        let status = app.health_status(service).await;
        if status == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health of {service:?} is still {status:?} after {NOTICE_WITHIN:?}, expected {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// UNAVAILABLE, with a `RetryInfo` telling the client to retry.
#[track_caller]
fn assert_retryable(status: &tonic::Status, what: &str) {
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "{what}: expected UNAVAILABLE, got {:?} {:?}",
        status.code(),
        status.message()
    );
    let retry = status
        .get_details_retry_info()
        .unwrap_or_else(|| panic!("{what}: UNAVAILABLE without RetryInfo: {status:?}"));
    assert!(
        retry
            .retry_delay
            .is_some_and(|delay| delay > Duration::ZERO),
        "{what}: RetryInfo without a delay: {retry:?}"
    );
}

const TICKET_SERVICE: &str = "ticketd.v1.TicketService";

async fn health_follows_the_database_and_calls_fail_fast_while_it_is_away(
    app: TestApp,
    proxy: DatabaseProxy,
) {
    let created = app.create_ticket(ticket("before the outage")).await;
    assert_eq!(app.health_status("").await, ServingStatus::Serving);
    assert_eq!(
        app.health_status(TICKET_SERVICE).await,
        ServingStatus::Serving
    );

    proxy.cut();
    wait_for_health(&app, "", ServingStatus::NotServing).await;
    wait_for_health(&app, TICKET_SERVICE, ServingStatus::NotServing).await;
    assert_eq!(
        app.health_status(ticketd::server::LIVENESS_SERVICE).await,
        ServingStatus::Serving,
        "liveness does not follow the database: restarting would not bring it back"
    );

    // Known down: refused before any database work, far within the pool's acquire timeout.
    let asked = Instant::now();
    let refused = app
        .tickets()
        .get_ticket(GetTicketRequest { id: created.id })
        .await
        .expect_err("a read while the database is away");
    assert_retryable(&refused, "GetTicket during the outage");
    assert!(
        asked.elapsed() < POOL_ACQUIRE_TIMEOUT / 2,
        "GetTicket took {:?} to be refused",
        asked.elapsed()
    );
    let refused = app
        .tickets()
        .create_ticket(create_ticket_req(ticket("during the outage")))
        .await
        .expect_err("a write while the database is away");
    assert_retryable(&refused, "CreateTicket during the outage");

    proxy.restore();
    wait_for_health(&app, "", ServingStatus::Serving).await;
    wait_for_health(&app, TICKET_SERVICE, ServingStatus::Serving).await;
    assert_eq!(
        app.get_ticket(created.id).await.subject,
        "before the outage"
    );
    app.create_ticket(ticket("after the outage")).await;
    assert_eq!(
        app.ticket_count().await,
        2,
        "the refused write must not have happened"
    );
    app.shutdown().await;
}

async fn a_call_waiting_on_a_silent_database_is_answered_and_its_retry_lands_once(
    app: TestApp,
    proxy: DatabaseProxy,
) {
    app.create_ticket(ticket("warm the pool")).await;
    let request_id = request_id();
    let request = CreateTicketRequest {
        request_id: request_id.clone(),
        ..create_ticket_req(ticket("sent into silence"))
    };

    // Packets dropped: nothing fails, nothing answers. The call must still be answered, by the outage.
    proxy.hold();
    let asked = Instant::now();
    let answer = tokio::time::timeout(NOTICE_WITHIN, app.tickets().create_ticket(request.clone()))
        .await
        .expect("a call waiting on an unanswering database must be answered");
    let status = answer.expect_err("the database never answered");
    assert_retryable(&status, "CreateTicket into a silent database");
    assert!(
        asked.elapsed() < POOL_ACQUIRE_TIMEOUT,
        "answered only after {:?}",
        asked.elapsed()
    );

    proxy.restore();
    wait_for_health(&app, "", ServingStatus::Serving).await;
    // The client retries with the same request id, as RetryInfo invites it to.
    let retried = ok(app.tickets().create_ticket(request.clone()).await);
    let again = ok(app.tickets().create_ticket(request).await);
    assert_eq!(retried.id, again.id, "a retry replays the first answer");
    let subjects: Vec<String> = app
        .list_all_tickets(Default::default())
        .await
        .into_iter()
        .map(|ticket| ticket.subject)
        .collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| *s == "sent into silence")
            .count(),
        1,
        "exactly one ticket for the request id: {subjects:?}"
    );
    app.shutdown().await;
}

async fn streams_end_resumably_when_the_database_goes_and_resume_without_gaps(
    app: TestApp,
    proxy: DatabaseProxy,
) {
    let mut stream = app.watch(watch_all(0)).await;
    let first = app.create_ticket(ticket("seen live")).await;
    let seen = next_message(&mut stream, "the creation before the outage").await;
    assert_eq!(seen.ticket_id, first.id);

    proxy.cut();
    let (more, resume) = read_until_unavailable(&mut stream, "the stream during the outage").await;
    assert!(more.is_empty(), "nothing was written: {more:?}");
    assert_eq!(
        resume, seen.event_id,
        "the trailer resumes after the last event sent"
    );
    // The stream may end on its own query's failure before the probe has looked; restoring before the
    // probe saw the outage would let it see the cut afterwards and refuse the next call.
    wait_for_health(&app, "", ServingStatus::NotServing).await;

    proxy.restore();
    wait_for_health(&app, "", ServingStatus::Serving).await;
    let second = app.create_ticket(ticket("written after the outage")).await;
    let mut resumed = app.watch(watch_all(resume)).await;
    let next = next_message(&mut resumed, "the first event after resuming").await;
    assert_eq!(
        next.ticket_id, second.id,
        "no gap and no repeat across the outage"
    );
    assert_eq!(app.history_after(resume).await.len(), 1);
    app.shutdown().await;
}

/// Runs each scenario on its own server behind its own proxy.
macro_rules! behind_proxy {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (app, proxy) = crate::support::TestApp::postgres_behind_proxy().await;
                    super::$name(app, proxy).await
                }
            )+
        }
    };
}

behind_proxy!(
    health_follows_the_database_and_calls_fail_fast_while_it_is_away,
    a_call_waiting_on_a_silent_database_is_answered_and_its_retry_lands_once,
    streams_end_resumably_when_the_database_goes_and_resume_without_gaps,
);
