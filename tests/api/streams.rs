//! WatchTickets: live events with the ticket as it was after each change, resuming with `after_event_id`
//! (after a disconnect, a restart, a shutdown or on another replica) without gaps or repeats, filters on the
//! ticket before or after the change, concurrent writers and slow subscribers.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    time::Duration,
};

use ticketd::proto::{
    BatchUpdateTicketsRequest, CommentVisibility, FieldChange, Priority, PropertyType, Ticket,
    TicketEvent, TicketEventKind, WatchTicketsRequest, ticket_service_client::TicketServiceClient,
};
use tokio::sync::mpsc;
use tonic::{Code, Status};

use crate::support::*;

both_databases!(
    live_events_arrive_in_order_with_the_ticket_after_each_change,
    each_snapshot_equals_the_ticket_read_back_after_that_write,
    without_after_event_id_the_stream_starts_with_the_next_event,
    after_event_id_replays_exactly_the_missed_events_then_continues_live,
    filters_match_the_ticket_before_or_after_the_change,
    resuming_after_a_restart_misses_nothing,
    shutdown_ends_streams_with_unavailable_and_the_resume_trailer,
    shutdown_ends_an_unread_stream_resumably_too,
    a_watch_sees_a_write_made_right_after_it_opened,
    concurrent_writers_reach_every_watcher_once_in_order,
    a_slow_subscriber_neither_blocks_others_nor_loses_events,
);

postgres_only!(
    writes_through_one_replica_reach_watchers_on_another,
    resuming_on_the_other_replica_gets_exactly_the_remaining_events,
);

const ACTOR: &str = "agent-7";

/// How long a restart or shutdown may take in these tests (the helper itself allows 60 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// The ticket snapshot of a watched event; panics when it is missing.
#[track_caller]
fn snapshot(event: &TicketEvent) -> &Ticket {
    event.ticket.as_ref().unwrap_or_else(|| {
        panic!(
            "a watched event must carry the ticket after the change: {:?}",
            without_ticket(event)
        )
    })
}

/// Panics unless `received` is exactly `expected`, describing the gaps, repeats and reordering.
#[track_caller]
fn assert_same_ids(received: &[i64], expected: &[i64], what: &str) {
    if received == expected {
        return;
    }
    let got: BTreeSet<i64> = received.iter().copied().collect();
    let want: BTreeSet<i64> = expected.iter().copied().collect();
    let missing: Vec<i64> = want.difference(&got).copied().collect();
    let unexpected: Vec<i64> = got.difference(&want).copied().collect();
    let repeats = received.len() - got.len();
    let out_of_order = received.windows(2).filter(|w| w[1] <= w[0]).count();
    panic!(
        "{what}: received {} event ids, expected {}; missing {} (first {:?}), unexpected {} (first {:?}), \
         repeats {repeats}, out-of-order steps {out_of_order}; received first {:?} / last {:?}",
        received.len(),
        expected.len(),
        missing.len(),
        &missing[..missing.len().min(10)],
        unexpected.len(),
        &unexpected[..unexpected.len().min(10)],
        &received[..received.len().min(10)],
        &received[received.len().saturating_sub(10)..],
    );
}

/// Receives from a reader task until an event with id ≥ `last_id` arrives (each within [`STREAM_TIMEOUT`]).
async fn collect_until(
    rx: &mut mpsc::UnboundedReceiver<TicketEvent>,
    already: &mut Vec<TicketEvent>,
    last_id: i64,
    what: &str,
) {
    while already.last().is_none_or(|e| e.event_id < last_id) {
        match tokio::time::timeout(STREAM_TIMEOUT, rx.recv()).await {
            Ok(Some(event)) => already.push(event),
            Ok(None) => panic!(
                "{what}: the watcher stopped after {} events, before event {last_id}",
                already.len()
            ),
            Err(_) => panic!(
                "{what}: nothing arrived within {STREAM_TIMEOUT:?}; {} events so far, last {:?}, waiting for {last_id}",
                already.len(),
                already.last().map(|e| e.event_id)
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// One server
// ---------------------------------------------------------------------------------------------------------------

async fn live_events_arrive_in_order_with_the_ticket_after_each_change(app: TestApp) {
    let mut stream = app.watch(watch_all(0)).await;

    let created = ok(app
        .tickets()
        .create_ticket(with_actor(
            create_ticket_req(Ticket {
                content: "It crashes on start-up".into(),
                assignee_id: "alice".into(),
                ..ticket("watched")
            }),
            ACTOR,
        ))
        .await);
    let id = created.id;
    let updated = ok(app
        .tickets()
        .update_ticket(with_actor(
            update_ticket_req(subject_change(id, "watched closely"), &["subject"]),
            ACTOR,
        ))
        .await);
    let moved = ok(app
        .tickets()
        .update_ticket(with_actor(
            update_ticket_req(stage_change(id, 2), &["stage_id"]),
            ACTOR,
        ))
        .await);
    let comment = ok(app
        .tickets()
        .add_comment(with_actor(
            comment_req(id, "We are on it.", CommentVisibility::Public),
            ACTOR,
        ))
        .await);
    let archived = ok(app
        .tickets()
        .archive_ticket(with_actor(archive_req(id), ACTOR))
        .await);
    let restored = ok(app
        .tickets()
        .restore_ticket(with_actor(restore_req(id), ACTOR))
        .await);

    let events = next_messages(&mut stream, 6, "live events of one ticket").await;

    assert_eq!(
        kinds(&events),
        vec![
            TicketEventKind::Created,
            TicketEventKind::Updated,
            TicketEventKind::StageChanged,
            TicketEventKind::CommentAdded,
            TicketEventKind::Archived,
            TicketEventKind::Restored,
        ]
    );
    assert_strictly_increasing(&event_ids(&events), "live events");
    for event in &events {
        assert_eq!(event.ticket_id, id);
        assert_eq!(
            event.actor_id,
            ACTOR,
            "actor of {:?}",
            without_ticket(event)
        );
        assert!(event.create_time.is_some(), "create_time of {event:?}");
    }

    // The ticket after each change is the one the write returned.
    assert_eq!(snapshot(&events[0]), &created, "ticket of CREATED");
    assert_eq!(snapshot(&events[1]), &updated, "ticket of UPDATED");
    assert_eq!(snapshot(&events[2]), &moved, "ticket of STAGE_CHANGED");
    assert_eq!(snapshot(&events[4]), &archived, "ticket of ARCHIVED");
    assert_eq!(snapshot(&events[5]), &restored, "ticket of RESTORED");
    let commented = snapshot(&events[3]);
    assert_eq!(
        (
            commented.id,
            commented.subject.as_str(),
            commented.stage_id,
            commented.archived
        ),
        (id, "watched closely", 2, false),
        "ticket of COMMENT_ADDED"
    );
    assert!(snapshot(&events[4]).archived);
    assert!(!snapshot(&events[5]).archived);

    assert_eq!(
        change_of(&events[1], "subject"),
        &FieldChange {
            field: "subject".into(),
            old_value: "watched".into(),
            new_value: "watched closely".into(),
        }
    );
    assert_eq!(change_of(&events[2], "stage_id").new_value, "2");
    assert_eq!(events[3].comment.as_ref(), Some(&comment));

    // The same events ListTicketHistory reports.
    assert_eq!(without_tickets(&events), app.history(id).await);
}

/// Writers hand the outbox the ticket they just wrote instead of reading it back; what streams carry must still
/// be exactly what a later read returns, properties (canonicalised), tags and timestamps included.
async fn each_snapshot_equals_the_ticket_read_back_after_that_write(app: TestApp) {
    app.define_property("refund_amount", PropertyType::Number)
        .await;
    app.define_property("serial", PropertyType::String).await;
    let mut stream = app.watch(watch_all(0)).await;
    let mut expected = Vec::new();

    let first = app
        .create_ticket(Ticket {
            requester_id: "contact-9".into(),
            tags: vec!["vip".into(), "billing".into()],
            properties: [
                ("refund_amount".to_owned(), "12.50".to_owned()),
                ("serial".to_owned(), "SN-1".to_owned()),
            ]
            .into(),
            ..ticket("snapshots")
        })
        .await;
    expected.push(app.get_ticket(first.id).await);
    let second = app.create_ticket(ticket("snapshots too")).await;
    expected.push(app.get_ticket(second.id).await);

    app.update_ticket(
        Ticket {
            id: first.id,
            stage_id: 2,
            properties: [("refund_amount".to_owned(), "7".to_owned())].into(),
            ..Default::default()
        },
        &["stage_id", "properties.refund_amount", "properties.serial"],
    )
    .await;
    expected.push(app.get_ticket(first.id).await);

    ok(app
        .tickets()
        .batch_update_tickets(BatchUpdateTicketsRequest {
            requests: vec![
                update_ticket_req(subject_change(first.id, "batch one"), &["subject"]),
                update_ticket_req(
                    Ticket {
                        id: second.id,
                        tags: vec!["moved".into()],
                        ..Default::default()
                    },
                    &["tags"],
                ),
            ],
            request_id: String::new(),
            ..Default::default()
        })
        .await);
    expected.push(app.get_ticket(first.id).await);
    expected.push(app.get_ticket(second.id).await);

    ok(app.tickets().archive_ticket(archive_req(second.id)).await);
    expected.push(app.get_ticket(second.id).await);

    let events = next_messages(&mut stream, expected.len(), "one event per write").await;
    let snapshots: Vec<&Ticket> = events.iter().map(snapshot).collect();
    assert_eq!(snapshots, expected.iter().collect::<Vec<_>>());
    assert_eq!(
        expected[2]
            .properties
            .get("refund_amount")
            .map(String::as_str),
        Some("7"),
        "the number was stored in canonical form"
    );
    assert!(
        !expected[2].properties.contains_key("serial"),
        "serial was cleared"
    );

    // Replayed from the database (after the first event: 0 means "from now on"), the same snapshots.
    let mut replay = app.watch(watch_all(events[0].event_id)).await;
    let replayed = next_messages(&mut replay, expected.len() - 1, "replayed events").await;
    assert_eq!(replayed, events[1..]);
}

async fn without_after_event_id_the_stream_starts_with_the_next_event(app: TestApp) {
    let before = app.create_ticket(ticket("before the watch")).await;
    app.update_ticket(subject_change(before.id, "still before"), &["subject"])
        .await;
    let last_before = app.last_event_id(before.id).await;

    let mut stream = app.watch(watch_all(0)).await;
    let after = app.create_ticket(ticket("after the watch")).await;
    let moved = app
        .update_ticket(stage_change(before.id, 3), &["stage_id"])
        .await;

    let events = next_messages(&mut stream, 2, "events after the watch began").await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.ticket_id, e.kind()))
            .collect::<Vec<_>>(),
        vec![
            (after.id, TicketEventKind::Created),
            (before.id, TicketEventKind::StageChanged)
        ],
        "no event from before the watch is replayed"
    );
    assert!(events[0].event_id > last_before);
    assert_eq!(snapshot(&events[0]), &after);
    assert_eq!(snapshot(&events[1]), &moved);
}

async fn after_event_id_replays_exactly_the_missed_events_then_continues_live(app: TestApp) {
    let a = app.create_ticket(ticket("a")).await;
    let b = app.create_ticket(ticket("b")).await;
    app.update_ticket(subject_change(a.id, "a1"), &["subject"])
        .await;
    app.update_ticket(stage_change(b.id, 3), &["stage_id"])
        .await;
    ok(app
        .tickets()
        .add_comment(comment_req(a.id, "first", CommentVisibility::Public))
        .await);
    app.update_ticket(subject_change(a.id, "a2"), &["subject"])
        .await;
    ok(app.tickets().archive_ticket(archive_req(b.id)).await);
    let history = app.all_history().await;
    assert_eq!(
        history.len(),
        7,
        "two creates and five changes: {history:?}"
    );

    // Replay from the second event: the five after it, in order, each with the ticket as it was then.
    let mut stream = app.watch(watch_all(history[1].event_id)).await;
    let replayed = next_messages(&mut stream, 5, "replayed events").await;
    assert_eq!(without_tickets(&replayed), history[2..].to_vec());
    assert_eq!(
        snapshot(&replayed[0]).subject,
        "a1",
        "a replayed event carries the ticket as it was after that change, not as it is now"
    );
    assert_eq!(snapshot(&replayed[1]).stage_id, 3);
    assert!(!snapshot(&replayed[1]).archived);
    assert_eq!(snapshot(&replayed[3]).subject, "a2");
    assert!(snapshot(&replayed[4]).archived);

    // Then live, with nothing in between.
    let c = app.create_ticket(ticket("c")).await;
    let live = next_message(&mut stream, "the first live event after the replay").await;
    assert_eq!(
        (live.ticket_id, live.kind()),
        (c.id, TicketEventKind::Created)
    );
    assert_eq!(live.event_id, app.last_event_id(c.id).await);

    // Resuming from the latest event replays nothing.
    let mut caught_up = app.watch(watch_all(live.event_id)).await;
    let d = app.create_ticket(ticket("d")).await;
    let first = next_message(&mut caught_up, "the event after the latest").await;
    assert_eq!(
        (first.ticket_id, first.kind()),
        (d.id, TicketEventKind::Created)
    );
    let same = next_message(&mut stream, "the first stream sees d too").await;
    assert_eq!(same, first);

    // A watcher that hangs up and comes back with its last event id gets what it missed, then live events.
    let last_seen = same.event_id;
    drop(stream);
    app.update_ticket(subject_change(c.id, "c1"), &["subject"])
        .await;
    ok(app
        .tickets()
        .add_comment(comment_req(d.id, "while away", CommentVisibility::Public))
        .await);
    ok(app.tickets().archive_ticket(archive_req(a.id)).await);
    let mut resumed = app.watch(watch_all(last_seen)).await;
    let missed = next_messages(&mut resumed, 3, "events missed while disconnected").await;
    let mut expected = app.history_after(last_seen).await;
    assert_eq!(without_tickets(&missed), expected);
    let e = app.create_ticket(ticket("e")).await;
    let live = next_message(&mut resumed, "live after the resume").await;
    expected = app.history(e.id).await;
    assert_eq!(without_tickets(&[live]), expected);

    // The caught-up watcher saw the same four events.
    let also = next_messages(&mut caught_up, 4, "the caught-up watcher").await;
    assert_eq!(
        event_ids(&also),
        event_ids(&missed)
            .into_iter()
            .chain(expected.iter().map(|e| e.event_id))
            .collect::<Vec<_>>()
    );
}

const STAGE4: &str = "stage_ids [4]";
const TICKET: &str = "ticket_ids [bystander]";
const PIPE_P: &str = "pipeline Escalations";
const PIPE_0: &str = "pipeline 0";
const ALICE: &str = "assignee alice";
const ORG: &str = "organization org-1";
const ALICE4: &str = "assignee alice and stage_ids [4]";

async fn filters_match_the_ticket_before_or_after_the_change(app: TestApp) {
    let escalations = app.create_pipeline(simple_pipeline("Escalations")).await;
    let mover = app.create_ticket(ticket("mover")).await;
    let bystander = app.create_ticket(ticket("bystander")).await;
    let assigned = app
        .create_ticket(Ticket {
            assignee_id: "alice".into(),
            organization_id: "org-1".into(),
            ..ticket("assigned")
        })
        .await;
    let elsewhere = app
        .create_ticket(Ticket {
            pipeline_id: escalations.id,
            ..ticket("in escalations")
        })
        .await;
    let baseline = app.last_event_id(elsewhere.id).await;

    let filters: Vec<(&str, WatchTicketsRequest)> = vec![
        (
            STAGE4,
            WatchTicketsRequest {
                stage_ids: vec![4],
                ..Default::default()
            },
        ),
        (
            TICKET,
            WatchTicketsRequest {
                ticket_ids: vec![bystander.id],
                ..Default::default()
            },
        ),
        (
            PIPE_P,
            WatchTicketsRequest {
                pipeline_id: escalations.id,
                pipeline_id_set: true,
                ..Default::default()
            },
        ),
        (
            PIPE_0,
            WatchTicketsRequest {
                pipeline_id: 0,
                pipeline_id_set: true,
                ..Default::default()
            },
        ),
        (
            ALICE,
            WatchTicketsRequest {
                assignee_id: "alice".into(),
                ..Default::default()
            },
        ),
        (
            ORG,
            WatchTicketsRequest {
                organization_id: "org-1".into(),
                ..Default::default()
            },
        ),
        (
            ALICE4,
            WatchTicketsRequest {
                assignee_id: "alice".into(),
                stage_ids: vec![4],
                ..Default::default()
            },
        ),
    ];
    let mut live = Vec::new();
    for (name, filter) in &filters {
        live.push((*name, app.watch(filter.clone()).await));
    }

    // Every write makes one event; `steps` records its ticket and the filters it must reach.
    let mut steps: Vec<(i64, &[&str])> = Vec::new();
    app.update_ticket(stage_change(mover.id, 4), &["stage_id"])
        .await;
    steps.push((mover.id, &[STAGE4, PIPE_0])); // enters stage 4
    app.update_ticket(subject_change(bystander.id, "bystander 2"), &["subject"])
        .await;
    steps.push((bystander.id, &[TICKET, PIPE_0]));
    ok(app
        .tickets()
        .add_comment(comment_req(
            mover.id,
            "in stage 4",
            CommentVisibility::Public,
        ))
        .await);
    steps.push((mover.id, &[STAGE4, PIPE_0]));
    app.update_ticket(subject_change(elsewhere.id, "escalated"), &["subject"])
        .await;
    steps.push((elsewhere.id, &[PIPE_P]));
    app.update_ticket(stage_change(assigned.id, 4), &["stage_id"])
        .await;
    steps.push((assigned.id, &[STAGE4, PIPE_0, ALICE, ORG, ALICE4]));
    app.update_ticket(
        Ticket {
            id: assigned.id,
            assignee_id: "bob".into(),
            ..Default::default()
        },
        &["assignee_id"],
    )
    .await;
    steps.push((assigned.id, &[STAGE4, PIPE_0, ALICE, ORG, ALICE4])); // leaves alice
    app.update_ticket(stage_change(mover.id, 2), &["stage_id"])
        .await;
    steps.push((mover.id, &[STAGE4, PIPE_0])); // leaves stage 4
    let left_stage_4 = steps.len() - 1;
    app.update_ticket(subject_change(mover.id, "mover 2"), &["subject"])
        .await;
    steps.push((mover.id, &[PIPE_0]));
    app.update_ticket(
        Ticket {
            id: elsewhere.id,
            pipeline_id: 0,
            stage_id: 1,
            ..Default::default()
        },
        &["pipeline_id", "stage_id"],
    )
    .await;
    steps.push((elsewhere.id, &[PIPE_P, PIPE_0])); // leaves Escalations for pipeline 0
    let left_pipeline = steps.len() - 1;
    ok(app
        .tickets()
        .archive_ticket(archive_req(bystander.id))
        .await);
    steps.push((bystander.id, &[TICKET, PIPE_0]));
    app.update_ticket(
        Ticket {
            id: assigned.id,
            organization_id: "org-2".into(),
            ..Default::default()
        },
        &["organization_id"],
    )
    .await;
    steps.push((assigned.id, &[STAGE4, PIPE_0, ORG])); // still in stage 4, leaves org-1
    let newcomer = app
        .create_ticket(Ticket {
            assignee_id: "alice".into(),
            organization_id: "org-1".into(),
            ..ticket("newcomer")
        })
        .await;
    steps.push((newcomer.id, &[ALICE, ORG, PIPE_0]));
    app.update_ticket(stage_change(mover.id, 4), &["stage_id"])
        .await;
    steps.push((mover.id, &[STAGE4, PIPE_0]));
    app.update_ticket(stage_change(newcomer.id, 4), &["stage_id"])
        .await;
    steps.push((newcomer.id, &[STAGE4, PIPE_0, ALICE, ORG, ALICE4]));
    ok(app
        .tickets()
        .restore_ticket(restore_req(bystander.id))
        .await);
    steps.push((bystander.id, &[TICKET, PIPE_0]));
    let late = app
        .create_ticket(Ticket {
            pipeline_id: escalations.id,
            ..ticket("late escalation")
        })
        .await;
    steps.push((late.id, &[PIPE_P]));

    // The event id of every step, from each ticket's history.
    let mut per_ticket: HashMap<i64, VecDeque<i64>> = HashMap::new();
    for (ticket_id, _) in &steps {
        if !per_ticket.contains_key(ticket_id) {
            let ids = app
                .history(*ticket_id)
                .await
                .into_iter()
                .map(|e| e.event_id)
                .filter(|id| *id > baseline)
                .collect();
            per_ticket.insert(*ticket_id, ids);
        }
    }
    let step_events: Vec<(i64, &[&str])> = steps
        .iter()
        .map(|(ticket_id, matches)| {
            let event_id = per_ticket
                .get_mut(ticket_id)
                .and_then(|ids| ids.pop_front())
                .unwrap_or_else(|| panic!("ticket {ticket_id} has fewer events than writes"));
            (event_id, *matches)
        })
        .collect();
    for (ticket_id, rest) in &per_ticket {
        assert!(
            rest.is_empty(),
            "ticket {ticket_id} has extra events {rest:?}"
        );
    }
    let expected_for = |name: &str| -> Vec<i64> {
        step_events
            .iter()
            .filter(|(_, matches)| matches.contains(&name))
            .map(|(id, _)| *id)
            .collect()
    };

    for (name, stream) in &mut live {
        let expected = expected_for(name);
        let events = next_messages(stream, expected.len(), &format!("live watch of {name}")).await;
        assert_same_ids(
            &event_ids(&events),
            &expected,
            &format!("live watch of {name}"),
        );
        if *name == STAGE4 {
            let leaving = events
                .iter()
                .find(|e| e.event_id == step_events[left_stage_4].0)
                .expect("the move out of stage 4");
            assert_eq!(
                (snapshot(leaving).id, snapshot(leaving).stage_id),
                (mover.id, 2),
                "seen leaving stage 4, with the ticket after the move"
            );
        }
        if *name == PIPE_P {
            let leaving = events
                .iter()
                .find(|e| e.event_id == step_events[left_pipeline].0)
                .expect("the move out of Escalations");
            assert_eq!(snapshot(leaving).pipeline_id, 0);
        }
    }

    // The same filters replaying the history.
    for (name, filter) in &filters {
        let expected = expected_for(name);
        let mut stream = app
            .watch(WatchTicketsRequest {
                after_event_id: baseline,
                ..filter.clone()
            })
            .await;
        let events = next_messages(
            &mut stream,
            expected.len(),
            &format!("replayed watch of {name}"),
        )
        .await;
        assert_same_ids(
            &event_ids(&events),
            &expected,
            &format!("replayed watch of {name}"),
        );
    }
}

async fn resuming_after_a_restart_misses_nothing(app: TestApp) {
    let t = app.create_ticket(ticket("survives restarts")).await;
    let mut stream = app.watch(watch_all(0)).await;
    app.update_ticket(subject_change(t.id, "before the restart"), &["subject"])
        .await;
    ok(app
        .tickets()
        .add_comment(comment_req(t.id, "also before", CommentVisibility::Public))
        .await);
    let seen = next_messages(&mut stream, 2, "events before the restart").await;

    let restarting = tokio::spawn(app.restart());
    let (more, resume) = read_until_unavailable(&mut stream, "the stream across a restart").await;
    assert!(
        more.is_empty(),
        "no event was written, none may arrive: {more:?}"
    );
    assert_eq!(
        resume, seen[1].event_id,
        "the trailer names the last event sent"
    );
    let app = tokio::time::timeout(STOP_TIMEOUT, restarting)
        .await
        .expect("the restart finishes")
        .expect("the restart does not panic");

    // Written before the client comes back.
    app.update_ticket(stage_change(t.id, 4), &["stage_id"])
        .await;
    let other = app.create_ticket(ticket("after the restart")).await;
    ok(app.tickets().archive_ticket(archive_req(t.id)).await);

    let mut resumed = app.watch(watch_all(resume)).await;
    let missed = next_messages(&mut resumed, 3, "events written during the reconnect").await;
    let expected = app.history_after(resume).await;
    assert_eq!(without_tickets(&missed), expected);
    assert_eq!(missed[1].ticket_id, other.id);

    app.update_ticket(subject_change(other.id, "live again"), &["subject"])
        .await;
    let live = next_message(&mut resumed, "a live event after the resume").await;
    assert_eq!(
        (live.ticket_id, snapshot(&live).subject.as_str()),
        (other.id, "live again")
    );
    assert!(live.event_id > missed[2].event_id);
    drop(resumed);
    app.shutdown().await;
}

async fn shutdown_ends_streams_with_unavailable_and_the_resume_trailer(app: TestApp) {
    let t = app.create_ticket(ticket("watched until shutdown")).await;
    let mut everything = app.watch(watch_all(0)).await;
    let mut one_ticket = app
        .watch(WatchTicketsRequest {
            ticket_ids: vec![t.id],
            ..Default::default()
        })
        .await;
    let mut nothing = app
        .watch(WatchTicketsRequest {
            ticket_ids: vec![987_654_321],
            ..Default::default()
        })
        .await;
    let mut idle = app.watch(watch_all(0)).await;

    app.update_ticket(subject_change(t.id, "changed"), &["subject"])
        .await;
    let other = app.create_ticket(ticket("another")).await;
    let latest = app.last_event_id(other.id).await;
    let seen = next_messages(&mut everything, 2, "unfiltered events").await;
    let seen_one = next_message(&mut one_ticket, "the watched ticket's event").await;
    assert_eq!(seen_one.ticket_id, t.id);
    let seen_idle = next_messages(&mut idle, 2, "the second unfiltered watcher").await;
    assert_eq!(event_ids(&seen_idle), event_ids(&seen));

    let stopping = tokio::spawn(app.shutdown());

    let (rest, resume) = read_until_unavailable(&mut everything, "unfiltered watch").await;
    assert!(rest.is_empty(), "nothing else was written: {rest:?}");
    assert_eq!(resume, latest, "the last event id sent");

    let (rest, resume) = read_until_unavailable(&mut one_ticket, "watch of one ticket").await;
    assert!(rest.is_empty());
    assert!(
        resume >= seen_one.event_id && resume <= latest,
        "the trailer {resume} must be at least the last event sent ({}) and at most the latest ({latest})",
        seen_one.event_id
    );

    let (rest, resume) = read_until_unavailable(&mut nothing, "watch that matched nothing").await;
    assert!(rest.is_empty());
    assert!(
        (0..=latest).contains(&resume),
        "the trailer of a watch that sent nothing is 0 (or an event it has passed), got {resume}"
    );

    let (rest, resume) = read_until_unavailable(&mut idle, "second unfiltered watch").await;
    assert!(rest.is_empty());
    assert_eq!(resume, latest);

    tokio::time::timeout(STOP_TIMEOUT, stopping)
        .await
        .expect("the server stops although streams were open")
        .expect("shutdown returns Ok");
}

async fn shutdown_ends_an_unread_stream_resumably_too(app: TestApp) {
    let seed = app.create_ticket(ticket("before the backlog")).await;
    let baseline = app.last_event_id(seed.id).await;
    let database = app.database.clone();

    // A subscriber that reads nothing while a backlog builds up (8 MB), far beyond the transport's buffers.
    let mut unread = app.watch(watch_all(baseline)).await;
    let mut created = BTreeSet::new();
    for b in 0..5 {
        let requests = (0..100)
            .map(|i| create_ticket_req(bulky_ticket(&format!("backlog {b}/{i}"))))
            .collect();
        let batch = app.batch_create_tickets(requests).await;
        created.extend(batch.iter().map(|t| t.id));
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let the server fill the stream's buffers

    // The server stops while the stream is backed up; the client reads only now.
    let stopping = tokio::spawn(app.shutdown());
    let (received, resume) =
        read_until_unavailable(&mut unread, "a stream backed up at shutdown").await;
    eprintln!(
        "backed-up stream: {} of {} events before the shutdown, resume after {resume}",
        received.len(),
        created.len()
    );
    assert_strictly_increasing(&event_ids(&received), "events before the shutdown");
    assert_eq!(
        resume,
        received.last().map_or(baseline, |e| e.event_id),
        "the trailer names the last event received ({} received)",
        received.len()
    );
    tokio::time::timeout(STOP_TIMEOUT, stopping)
        .await
        .expect("the server stops")
        .expect("shutdown returns Ok");

    // Resuming on a new server yields the rest: together, one CREATED event per ticket, in order.
    let app = TestApp::start(database).await;
    let mut resumed = app.watch(watch_all(resume)).await;
    let rest = next_messages(&mut resumed, created.len() - received.len(), "the rest").await;
    let all: Vec<TicketEvent> = received.into_iter().chain(rest).collect();
    assert_strictly_increasing(&event_ids(&all), "events before and after the shutdown");
    assert_eq!(
        all.iter().map(|e| e.ticket_id).collect::<BTreeSet<_>>(),
        created,
        "one CREATED event per ticket, none missing"
    );
    drop(resumed);
    app.shutdown().await;
}

async fn a_watch_sees_a_write_made_right_after_it_opened(app: TestApp) {
    // "Starts with the next event to commit": once the call is answered, the caller's next write is in it.
    for round in 0..20 {
        let watches = futures::future::join_all((0..8).map(|_| app.watch(watch_all(0)))).await;
        let created = app
            .create_ticket(ticket(&format!("right after the watches of round {round}")))
            .await;
        for (w, mut stream) in watches.into_iter().enumerate() {
            let what = format!(
                "round {round}, watch {w}, opened before ticket {} was created",
                created.id
            );
            let first = next_message(&mut stream, &what).await;
            assert_eq!(
                (first.ticket_id, first.kind()),
                (created.id, TicketEventKind::Created),
                "{what}: the first event is that write"
            );
        }
    }
}

/// Forwards every event of a stream to `tx`; returns the status the stream ended with.
fn forward(
    mut stream: tonic::Streaming<TicketEvent>,
    tx: mpsc::UnboundedSender<TicketEvent>,
) -> tokio::task::JoinHandle<Result<(), Status>> {
    tokio::spawn(async move {
        loop {
            match stream.message().await? {
                Some(event) => {
                    if tx.send(event).is_err() {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            }
        }
    })
}

const WRITERS: usize = 8;
const WRITES_PER_WRITER: usize = 25;

async fn concurrent_writers_reach_every_watcher_once_in_order(app: TestApp) {
    let shared = app.create_ticket(ticket("shared by every writer")).await;
    let baseline = app.last_event_id(shared.id).await;

    // Watcher 1 streams from the start to the end.
    let (tx1, mut rx1) = mpsc::unbounded_channel();
    let reader1 = forward(app.watch(watch_all(0)).await, tx1);

    // Watcher 2 hangs up after some events and resumes with its last event id while writes go on.
    let (tx2, mut rx2) = mpsc::unbounded_channel();
    let first_stream = app.watch(watch_all(0)).await;
    let mut client = app.tickets();
    let reader2 = tokio::spawn(async move {
        let mut stream = first_stream;
        let mut last = 0;
        for _ in 0..40 {
            match stream.message().await? {
                Some(event) => {
                    last = event.event_id;
                    let _ = tx2.send(event);
                }
                None => return Err(Status::internal("watcher 2: the stream ended early")),
            }
        }
        drop(stream);
        tokio::time::sleep(Duration::from_millis(150)).await; // miss a few events
        let mut stream = client.watch_tickets(watch_all(last)).await?.into_inner();
        while let Some(event) = stream.message().await? {
            if tx2.send(event).is_err() {
                return Ok(());
            }
        }
        Ok(())
    });

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut client = app.tickets();
        let shared_id = shared.id;
        writers.push(tokio::spawn(async move {
            let mut own: Vec<i64> = Vec::new();
            for i in 0..WRITES_PER_WRITER {
                let result = if i % 4 == 0 {
                    client
                        .create_ticket(create_ticket_req(ticket(&format!("writer {w} ticket {i}"))))
                        .await
                        .map(|r| own.push(r.into_inner().id))
                } else if i % 5 == 0 {
                    let priority = [Priority::Low, Priority::Medium, Priority::High][i % 3];
                    client
                        .update_ticket(update_ticket_req(
                            Ticket {
                                id: shared_id,
                                priority: priority.into(),
                                subject: format!("shared, writer {w} write {i}"),
                                ..Default::default()
                            },
                            &["priority", "subject"],
                        ))
                        .await
                        .map(|_| ())
                } else {
                    let id = own[i % own.len()];
                    client
                        .update_ticket(update_ticket_req(
                            subject_change(id, &format!("writer {w} write {i}")),
                            &["subject"],
                        ))
                        .await
                        .map(|_| ())
                };
                if let Err(status) = result {
                    panic!(
                        "writer {w}, write {i} failed: {:?} {:?}",
                        status.code(),
                        status.message()
                    );
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("a writer panicked");
    }

    let expected = event_ids(&app.history_after(baseline).await);
    assert_eq!(
        expected.len(),
        WRITERS * WRITES_PER_WRITER,
        "every write makes one event in ListTicketHistory"
    );
    let last = *expected.last().unwrap();

    let mut seen1 = Vec::new();
    collect_until(&mut rx1, &mut seen1, last, "watcher from the start").await;
    let mut seen2 = Vec::new();
    collect_until(&mut rx2, &mut seen2, last, "watcher that resumed midway").await;

    assert_same_ids(&event_ids(&seen1), &expected, "watcher from the start");
    assert_same_ids(&event_ids(&seen2), &expected, "watcher that resumed midway");
    for event in seen1.iter().chain(&seen2) {
        assert_eq!(snapshot(event).id, event.ticket_id);
    }

    reader1.abort();
    reader2.abort();
    let _ = reader1.await;
    let _ = reader2.await;
    app.shutdown().await;
}

/// Batches of big tickets that fill the slow subscriber's transport buffers (HTTP/2 windows) first.
const JAM_BATCHES: usize = 3;
/// Then batches of small ones: more events than the server can be expected to buffer per subscriber.
const FLOOD_BATCHES: usize = 50;
const FLOOD_BATCH_SIZE: usize = 100;

/// A ticket whose event carries ~16 KB (the content is in the ticket snapshot of every event).
fn bulky_ticket(subject: &str) -> Ticket {
    Ticket {
        content: "backlog ".repeat(2_000),
        ..ticket(subject)
    }
}

async fn a_slow_subscriber_neither_blocks_others_nor_loses_events(app: TestApp) {
    let seed = app.create_ticket(ticket("before the flood")).await;
    let baseline = app.last_event_id(seed.id).await;
    let total = (JAM_BATCHES + FLOOD_BATCHES) * FLOOD_BATCH_SIZE;

    // Each subscriber on a connection of its own, as separate clients would be.
    let slow_channel = connect(app.addr)
        .await
        .expect("a second connection to the server");
    let mut slow = ok(
        TicketServiceClient::with_interceptor(slow_channel, admin_bearer())
            .watch_tickets(watch_all(baseline))
            .await,
    );
    let mut fast = app.watch(watch_all(baseline)).await;
    let fast_reader = tokio::spawn(async move {
        let mut events = Vec::with_capacity(total);
        for i in 0..total {
            events.push(
                next_message(
                    &mut fast,
                    &format!("the fast subscriber (event {} of {total})", i + 1),
                )
                .await,
            );
        }
        events
    });

    let mut created = BTreeSet::new();
    for b in 0..JAM_BATCHES + FLOOD_BATCHES {
        let requests = (0..FLOOD_BATCH_SIZE)
            .map(|i| {
                let subject = format!("flood {b}/{i}");
                create_ticket_req(if b < JAM_BATCHES {
                    bulky_ticket(&subject)
                } else {
                    ticket(&subject)
                })
            })
            .collect();
        let batch = app.batch_create_tickets(requests).await;
        created.extend(batch.iter().map(|t| t.id));
    }
    assert_eq!(created.len(), total);

    // The fast subscriber got everything while the slow one read nothing.
    let fast_events = fast_reader.await.expect("the fast subscriber was blocked");
    let fast_ids = event_ids(&fast_events);
    assert_strictly_increasing(&fast_ids, "fast subscriber");
    assert!(
        fast_events
            .iter()
            .all(|e| e.kind() == TicketEventKind::Created)
    );
    assert_eq!(
        fast_events
            .iter()
            .map(|e| e.ticket_id)
            .collect::<BTreeSet<_>>(),
        created,
        "one CREATED event per created ticket"
    );
    let last = *fast_ids.last().unwrap();

    // Let the slow one fall further behind, then read it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut slow_events: Vec<TicketEvent> = Vec::new();
    let mut resumed = false;
    while slow_events.last().is_none_or(|e| e.event_id < last) {
        match next_item(&mut slow, "the slow subscriber").await {
            Ok(Some(event)) => slow_events.push(event),
            Ok(None) => panic!(
                "the slow subscriber's stream ended with OK after {} events",
                slow_events.len()
            ),
            Err(status) => {
                assert!(!resumed, "the resumed stream failed too: {status:?}");
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "a subscriber that fell behind ends with UNAVAILABLE: {:?}",
                    status.message()
                );
                let resume = resume_after(&status);
                let last_received = slow_events.last().map_or(baseline, |e| e.event_id);
                assert_eq!(
                    resume,
                    last_received,
                    "the trailer names the last event the slow subscriber received ({} received)",
                    slow_events.len()
                );
                eprintln!(
                    "slow subscriber cut off after {} of {total} events; resuming after event {resume}",
                    slow_events.len()
                );
                slow = app.watch(watch_all(resume)).await;
                resumed = true;
            }
        }
    }
    assert_same_ids(
        &event_ids(&slow_events),
        &fast_ids,
        if resumed {
            "slow subscriber (cut off, then resumed)"
        } else {
            "slow subscriber (kept up)"
        },
    );
    drop(slow);
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Two replicas over one PostgreSQL database
// ---------------------------------------------------------------------------------------------------------------

async fn writes_through_one_replica_reach_watchers_on_another(app: TestApp) {
    let b = app.another_server().await;
    let mut on_a = app.watch(watch_all(0)).await;
    let mut on_b = b.watch(watch_all(0)).await;

    let created = b.create_ticket(ticket("written through B")).await;
    let updated = b
        .update_ticket(subject_change(created.id, "still through B"), &["subject"])
        .await;
    let comment = ok(b
        .tickets()
        .add_comment(comment_req(created.id, "from B", CommentVisibility::Public))
        .await);
    let moved = app
        .update_ticket(stage_change(created.id, 4), &["stage_id"])
        .await;

    let history = app.history(created.id).await;
    assert_eq!(history.len(), 4);
    for (name, stream) in [("watcher on A", &mut on_a), ("watcher on B", &mut on_b)] {
        let events = next_messages(stream, 4, name).await;
        assert_eq!(without_tickets(&events), history, "{name}");
        assert_eq!(snapshot(&events[0]), &created, "{name}");
        assert_eq!(snapshot(&events[1]), &updated, "{name}");
        assert_eq!(events[2].comment.as_ref(), Some(&comment), "{name}");
        assert_eq!(snapshot(&events[3]), &moved, "{name}");
    }

    drop(on_a);
    drop(on_b);
    b.shutdown().await;
    app.shutdown().await;
}

async fn resuming_on_the_other_replica_gets_exactly_the_remaining_events(app: TestApp) {
    let b = app.another_server().await;
    let t = app.create_ticket(ticket("fails over")).await;
    let mut on_a = app.watch(watch_all(0)).await;
    app.update_ticket(subject_change(t.id, "through A"), &["subject"])
        .await;
    b.update_ticket(stage_change(t.id, 2), &["stage_id"]).await;
    let seen = next_messages(&mut on_a, 2, "watcher on A").await;

    // A hangs up its watcher; writes go on through both; the client comes back on B.
    let last_seen = seen[1].event_id;
    drop(on_a);
    let u = app.create_ticket(ticket("while away, through A")).await;
    ok(b.tickets()
        .add_comment(comment_req(
            t.id,
            "while away, through B",
            CommentVisibility::Public,
        ))
        .await);
    let mut on_b = b.watch(watch_all(last_seen)).await;
    let missed = next_messages(&mut on_b, 2, "missed events replayed by B").await;
    let expected = b.history_after(last_seen).await;
    assert_eq!(without_tickets(&missed), expected);
    assert_eq!(missed[0].ticket_id, u.id);

    // A watcher on A is cut off by A's shutdown and resumes on B with the trailer.
    let mut on_a = app.watch(watch_all(0)).await;
    b.update_ticket(subject_change(u.id, "through B"), &["subject"])
        .await;
    let before_shutdown = next_message(&mut on_a, "watcher on A before its shutdown").await;
    let stopping = tokio::spawn(app.shutdown());
    let (rest, resume) = read_until_unavailable(&mut on_a, "watcher on A at shutdown").await;
    assert!(rest.is_empty());
    assert_eq!(resume, before_shutdown.event_id);
    tokio::time::timeout(STOP_TIMEOUT, stopping)
        .await
        .expect("A stops")
        .expect("A's shutdown returns Ok");

    b.update_ticket(stage_change(t.id, 4), &["stage_id"]).await;
    ok(b.tickets().archive_ticket(archive_req(u.id)).await);
    let mut failed_over = b.watch(watch_all(resume)).await;
    let remaining = next_messages(&mut failed_over, 2, "events after A's last one, from B").await;
    let expected = b.history_after(resume).await;
    assert_eq!(without_tickets(&remaining), expected);

    // The watcher that never left B saw everything, once, in order.
    let live = next_messages(&mut on_b, 3, "the watcher on B").await;
    assert_eq!(
        event_ids(&live),
        std::iter::once(before_shutdown.event_id)
            .chain(event_ids(&remaining))
            .collect::<Vec<_>>()
    );

    drop(on_b);
    drop(failed_over);
    b.shutdown().await;
}
