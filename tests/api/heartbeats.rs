//! Stream heartbeats (`--stream-heartbeat-secs`): a silent WatchTickets or WatchCard stream sends a message that
//! carries nothing but `heartbeat = true`, and heartbeats never disturb event ids, versions or resuming.

use std::time::{Duration, Instant};

use ticketd::proto::{RenderedCard, TicketEvent, WatchCardRequest, WatchTicketsRequest};
use tonic::Streaming;

use crate::support::*;

both_databases!(
    an_idle_watch_tickets_stream_receives_heartbeats,
    events_keep_their_ids_between_heartbeats_and_resuming_has_no_gap_or_repeat,
    an_idle_watch_card_stream_receives_heartbeats_between_versions,
);

const HEARTBEAT: Duration = Duration::from_secs(1);

/// Panics unless `event` is a heartbeat: the flag and nothing else.
#[track_caller]
fn assert_ticket_heartbeat(event: &TicketEvent) {
    assert_eq!(
        event,
        &TicketEvent {
            heartbeat: true,
            ..TicketEvent::default()
        },
        "a heartbeat carries nothing but the flag"
    );
}

/// The next message that is not a heartbeat, and how many heartbeats came first.
async fn next_event(stream: &mut Streaming<TicketEvent>, what: &str) -> (TicketEvent, usize) {
    let mut heartbeats = 0;
    loop {
        let event = next_message(stream, what).await;
        if !event.heartbeat {
            return (event, heartbeats);
        }
        assert_ticket_heartbeat(&event);
        heartbeats += 1;
    }
}

async fn an_idle_watch_tickets_stream_receives_heartbeats(app: TestApp) {
    let app = app.with_stream_heartbeat(HEARTBEAT).await;
    let mut stream = app.watch(WatchTicketsRequest::default()).await;
    let opened = Instant::now();
    for n in 1..=2 {
        let event = next_message(&mut stream, &format!("heartbeat {n}")).await;
        assert_ticket_heartbeat(&event);
    }
    assert!(
        opened.elapsed() >= 2 * HEARTBEAT - Duration::from_millis(100),
        "two heartbeats come a heartbeat interval apart, not at once: {:?}",
        opened.elapsed()
    );
    app.shutdown().await;
}

async fn events_keep_their_ids_between_heartbeats_and_resuming_has_no_gap_or_repeat(app: TestApp) {
    let app = app.with_stream_heartbeat(HEARTBEAT).await;
    let mut stream = app.watch(WatchTicketsRequest::default()).await;
    assert_ticket_heartbeat(&next_message(&mut stream, "first heartbeat").await);

    let first = app.create_tickets(3).await;
    let mut seen = Vec::new();
    for ticket in &first {
        let (event, _) = next_event(&mut stream, "an event after a heartbeat").await;
        assert_eq!(event.ticket_id, ticket.id);
        assert!(event.event_id > 0, "events keep their ids: {event:?}");
        seen.push(event.event_id);
    }
    // Silence again: a heartbeat follows the events, and must not move where the client resumes from.
    assert_ticket_heartbeat(&next_message(&mut stream, "heartbeat after the events").await);
    let resume_from = *seen.last().expect("three events");
    drop(stream);

    let missed = app.create_tickets(2).await;
    let mut resumed = app
        .watch(WatchTicketsRequest {
            after_event_id: resume_from,
            ..WatchTicketsRequest::default()
        })
        .await;
    let mut replayed = Vec::new();
    for _ in &missed {
        let (event, _) = next_event(&mut resumed, "a replayed event").await;
        replayed.push(event);
    }
    assert_eq!(
        replayed
            .iter()
            .map(|event| event.ticket_id)
            .collect::<Vec<_>>(),
        missed.iter().map(|ticket| ticket.id).collect::<Vec<_>>(),
        "exactly the events written while disconnected, in order"
    );
    let history = app.history_after(resume_from).await;
    assert_eq!(
        replayed
            .iter()
            .map(|event| event.event_id)
            .collect::<Vec<_>>(),
        history
            .iter()
            .map(|event| event.event_id)
            .collect::<Vec<_>>(),
        "no gap and no repeat after the last event id"
    );
    // Nothing more was written: only heartbeats follow.
    assert_ticket_heartbeat(&next_message(&mut resumed, "heartbeat after the replay").await);
    app.shutdown().await;
}

async fn an_idle_watch_card_stream_receives_heartbeats_between_versions(app: TestApp) {
    let app = app.with_stream_heartbeat(HEARTBEAT).await;
    let template = app
        .create_card_template(card_template_req("heartbeats"))
        .await;
    let created = app.create_ticket(ticket("card heartbeats")).await;
    let card = app
        .send_card(send_card_req(template.id, created.id, "group-hb"))
        .await;
    let heartbeat = RenderedCard {
        heartbeat: true,
        ..RenderedCard::default()
    };

    let mut by_card = app
        .watch_card(WatchCardRequest {
            card_id: card.id,
            ..WatchCardRequest::default()
        })
        .await;
    let current = next_message(&mut by_card, "the current render").await;
    assert_eq!(
        (current.card_id, current.version, current.heartbeat),
        (card.id, 1, false)
    );
    assert_eq!(next_message(&mut by_card, "a heartbeat").await, heartbeat);

    app.update_card(update_card_req(card.id, 1, &[("customername", "Ann")]))
        .await;
    let mut next = next_message(&mut by_card, "version 2").await;
    while next.heartbeat {
        assert_eq!(next, heartbeat);
        next = next_message(&mut by_card, "version 2").await;
    }
    assert_eq!((next.card_id, next.version), (card.id, 2));
    assert_eq!(
        next_message(&mut by_card, "a heartbeat after v2").await,
        heartbeat
    );

    // A group stream with no card yet is silent but for heartbeats.
    let mut by_group = app
        .watch_card(WatchCardRequest {
            group_id: "group-empty".into(),
            ..WatchCardRequest::default()
        })
        .await;
    assert_eq!(
        next_message(&mut by_group, "group heartbeat").await,
        heartbeat
    );
    app.shutdown().await;
}
