//! Side effects chosen by each write: every ticket write takes `side_effects` (notify, skip_automations), and
//! the server records what it settled on every event the write produces, in ListTicketHistory and in
//! WatchTickets. A ticket created directly in a CLOSED stage notifies nobody unless the write asked; customers
//! may not silence a write or skip automations.

use ticketd::proto::{
    AddCommentRequest, ArchiveTicketRequest, BatchArchiveTicketsRequest, BatchCreateTicketsRequest,
    BatchUpdateTicketsRequest, CommentVisibility, CreateTicketRequest, Notify,
    RestoreTicketRequest, SideEffects, Ticket, TicketEvent, TicketEventKind, TicketState,
    UpdateTicketRequest,
};
use tonic::{Code, Streaming};

use crate::support::*;

both_databases!(
    a_write_that_chooses_nothing_notifies_and_runs_automations,
    each_write_records_its_choice_on_every_event_it_produces,
    a_batch_applies_its_own_choice_to_every_item,
    a_ticket_created_directly_in_a_closed_stage_notifies_nobody_unless_asked,
    customers_may_ask_to_notify_but_not_to_keep_quiet_or_skip_automations,
    an_unknown_notify_value_is_invalid,
    a_retry_with_other_side_effects_is_another_request,
);

/// The stage of the default pipeline whose state is CLOSED.
const DEFAULT_CLOSED_STAGE: i64 = 4;

fn side_effects(notify: Notify, skip_automations: bool) -> Option<SideEffects> {
    Some(SideEffects {
        notify: notify.into(),
        skip_automations,
    })
}

/// What every event records when its write chose nothing.
fn announced() -> Option<SideEffects> {
    side_effects(Notify::All, false)
}

/// A write that notifies nobody and that automations leave alone (a clean-up, a migration).
fn quiet() -> Option<SideEffects> {
    side_effects(Notify::None, true)
}

/// Each event's kind with the side effects it carries.
fn recorded(events: &[TicketEvent]) -> Vec<(TicketEventKind, Option<SideEffects>)> {
    events
        .iter()
        .map(|event| (event.kind(), event.side_effects))
        .collect()
}

/// Panics unless a watch opened before the test's first write delivered exactly the history of every ticket,
/// side effects included (the stream also carries each ticket's snapshot, which the history leaves out).
async fn assert_watch_agrees(app: &TestApp, watch: &mut Streaming<TicketEvent>) {
    let history = app.all_history().await;
    let streamed = next_messages(watch, history.len(), "the test's writes").await;
    assert_eq!(
        without_tickets(&streamed),
        history,
        "a watch delivers the side effects that ListTicketHistory lists"
    );
}

async fn a_write_that_chooses_nothing_notifies_and_runs_automations(app: TestApp) {
    let mut watch = app.watch(watch_all(0)).await;

    let t = app.create_ticket(ticket("printer on fire")).await;
    app.update_ticket(subject_change(t.id, "printer smoking"), &["subject"])
        .await;
    ok(app
        .tickets()
        .add_comment(comment_req(t.id, "On our way", CommentVisibility::Public))
        .await);
    ok(app.tickets().archive_ticket(archive_req(t.id)).await);
    ok(app.tickets().restore_ticket(restore_req(t.id)).await);

    assert_eq!(
        recorded(&app.history(t.id).await),
        [
            (TicketEventKind::Created, announced()),
            (TicketEventKind::Updated, announced()),
            (TicketEventKind::CommentAdded, announced()),
            (TicketEventKind::Archived, announced()),
            (TicketEventKind::Restored, announced()),
        ]
    );
    assert_watch_agrees(&app, &mut watch).await;
}

async fn each_write_records_its_choice_on_every_event_it_produces(app: TestApp) {
    let mut watch = app.watch(watch_all(0)).await;
    let t = ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            side_effects: quiet(),
            associations: vec![link("contact", "201", 0)],
            ..create_ticket_req(ticket("imported from the old desk"))
        })
        .await);
    ok(app
        .tickets()
        .update_ticket(UpdateTicketRequest {
            side_effects: side_effects(Notify::None, false),
            ..update_ticket_req(subject_change(t.id, "typo fixed"), &["subject"])
        })
        .await);
    // Choices belong to one write: the next that chooses nothing announces itself again.
    app.update_ticket(stage_change(t.id, 2), &["stage_id"])
        .await;
    ok(app
        .tickets()
        .add_comment(AddCommentRequest {
            side_effects: side_effects(Notify::Unspecified, true),
            ..comment_req(t.id, "bot note", CommentVisibility::Internal)
        })
        .await);
    ok(app
        .tickets()
        .archive_ticket(ArchiveTicketRequest {
            side_effects: quiet(),
            ..archive_req(t.id)
        })
        .await);
    ok(app
        .tickets()
        .restore_ticket(RestoreTicketRequest {
            side_effects: side_effects(Notify::All, true),
            ..restore_req(t.id)
        })
        .await);

    assert_eq!(
        recorded(&app.history(t.id).await),
        [
            (TicketEventKind::Created, quiet()),
            (TicketEventKind::AssociationAdded, quiet()),
            (TicketEventKind::Updated, side_effects(Notify::None, false)),
            (TicketEventKind::StageChanged, announced()),
            (
                TicketEventKind::CommentAdded,
                side_effects(Notify::All, true)
            ),
            (TicketEventKind::Archived, quiet()),
            (TicketEventKind::Restored, side_effects(Notify::All, true)),
        ]
    );
    assert_watch_agrees(&app, &mut watch).await;
}

async fn a_batch_applies_its_own_choice_to_every_item(app: TestApp) {
    let mut watch = app.watch(watch_all(0)).await;
    // The items' own side effects are ignored, like their request ids: the batch's count.
    let item = |subject: &str| CreateTicketRequest {
        side_effects: announced(),
        ..create_ticket_req(ticket(subject))
    };
    let created = ok(app
        .tickets()
        .batch_create_tickets(BatchCreateTicketsRequest {
            requests: vec![item("first"), item("second")],
            side_effects: quiet(),
            ..Default::default()
        })
        .await)
    .tickets;
    ok(app
        .tickets()
        .batch_update_tickets(BatchUpdateTicketsRequest {
            requests: created
                .iter()
                .map(|t| UpdateTicketRequest {
                    side_effects: quiet(),
                    ..update_ticket_req(subject_change(t.id, "renamed"), &["subject"])
                })
                .collect(),
            side_effects: side_effects(Notify::Unspecified, true),
            ..Default::default()
        })
        .await);
    ok(app
        .tickets()
        .batch_archive_tickets(BatchArchiveTicketsRequest {
            requests: created.iter().map(|t| archive_req(t.id)).collect(),
            side_effects: side_effects(Notify::None, false),
            ..Default::default()
        })
        .await);

    for t in &created {
        assert_eq!(
            recorded(&app.history(t.id).await),
            [
                (TicketEventKind::Created, quiet()),
                (TicketEventKind::Updated, side_effects(Notify::All, true)),
                (TicketEventKind::Archived, side_effects(Notify::None, false)),
            ],
            "ticket {}",
            t.id
        );
    }
    assert_watch_agrees(&app, &mut watch).await;
}

async fn a_ticket_created_directly_in_a_closed_stage_notifies_nobody_unless_asked(app: TestApp) {
    let mut watch = app.watch(watch_all(0)).await;
    let closed = |subject: &str| Ticket {
        stage_id: DEFAULT_CLOSED_STAGE,
        ..ticket(subject)
    };

    // Logged after the fact: nobody should hear "your ticket was solved" about a ticket they never saw open,
    // links made with it included.
    let logged = ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            associations: vec![link("contact", "201", 0)],
            ..create_ticket_req(closed("solved on the phone"))
        })
        .await);
    assert!(logged.close_time.is_some(), "created closed");
    let asked = ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            side_effects: side_effects(Notify::All, false),
            ..create_ticket_req(closed("solved, and say so"))
        })
        .await);
    let skipping = ok(app
        .tickets()
        .create_ticket(CreateTicketRequest {
            side_effects: side_effects(Notify::Unspecified, true),
            ..create_ticket_req(closed("solved by a script"))
        })
        .await);
    // In a batch the rule holds ticket by ticket.
    let batch = app
        .batch_create_tickets(vec![
            create_ticket_req(closed("closed in a batch")),
            create_ticket_req(ticket("open in a batch")),
        ])
        .await;
    // A pipeline of the caller's own, created with a CLOSED stage first, is no different.
    let done_first = app
        .create_pipeline(pipeline(
            "archive of old chats",
            vec![
                stage("Done", TicketState::Closed, 1),
                stage("Reopened", TicketState::Open, 2),
            ],
        ))
        .await;
    let first_stage = app
        .create_ticket(Ticket {
            pipeline_id: done_first.id,
            ..ticket("placed in the first stage")
        })
        .await;

    let silenced = side_effects(Notify::None, false);
    assert_eq!(
        recorded(&app.history(logged.id).await),
        [
            (TicketEventKind::Created, silenced),
            (TicketEventKind::AssociationAdded, silenced),
        ]
    );
    assert_eq!(
        recorded(&app.history(asked.id).await),
        [(TicketEventKind::Created, announced())]
    );
    assert_eq!(
        recorded(&app.history(skipping.id).await),
        [(TicketEventKind::Created, side_effects(Notify::None, true))]
    );
    assert_eq!(
        recorded(&app.history(batch[0].id).await),
        [(TicketEventKind::Created, silenced)]
    );
    assert_eq!(
        recorded(&app.history(batch[1].id).await),
        [(TicketEventKind::Created, announced())]
    );
    assert_eq!(
        recorded(&app.history(first_stage.id).await),
        [(TicketEventKind::Created, silenced)]
    );

    // Only the creation is quiet: what happens to the ticket afterwards is news again.
    let last = app.last_event_id(first_stage.id).await;
    app.update_ticket(
        subject_change(logged.id, "solved on the phone, twice"),
        &["subject"],
    )
    .await;
    ok(app
        .tickets()
        .add_comment(comment_req(
            logged.id,
            "Glad it works",
            CommentVisibility::Public,
        ))
        .await);
    assert_eq!(
        recorded(&app.history_after(last).await),
        [
            (TicketEventKind::Updated, announced()),
            (TicketEventKind::CommentAdded, announced()),
        ]
    );
    assert_watch_agrees(&app, &mut watch).await;
}

async fn customers_may_ask_to_notify_but_not_to_keep_quiet_or_skip_automations(app: TestApp) {
    let help = app.create_portal(portal("help centre")).await;
    let mut carol = app.tickets_as(&customer_token("carol", "org-c", help.id));
    let own = ok(carol
        .create_ticket(create_ticket_req(ticket("cannot log in")))
        .await);
    let tickets_before = app.ticket_count().await;
    let history_before = app.history(own.id).await;

    assert_field_denied(
        carol
            .create_ticket(CreateTicketRequest {
                side_effects: side_effects(Notify::None, false),
                ..create_ticket_req(ticket("hush"))
            })
            .await,
        "side_effects.notify",
    );
    assert_field_denied(
        carol
            .create_ticket(CreateTicketRequest {
                side_effects: side_effects(Notify::Unspecified, true),
                ..create_ticket_req(ticket("no robots"))
            })
            .await,
        "side_effects.skip_automations",
    );
    assert_field_denied(
        carol
            .update_ticket(UpdateTicketRequest {
                side_effects: side_effects(Notify::None, false),
                ..update_ticket_req(subject_change(own.id, "quietly renamed"), &["subject"])
            })
            .await,
        "side_effects.notify",
    );
    assert_field_denied(
        carol
            .add_comment(AddCommentRequest {
                side_effects: side_effects(Notify::All, true),
                ..comment_req(own.id, "psst", CommentVisibility::Public)
            })
            .await,
        "side_effects.skip_automations",
    );
    assert_field_denied(
        carol
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: vec![update_ticket_req(
                    subject_change(own.id, "quietly renamed"),
                    &["subject"],
                )],
                side_effects: side_effects(Notify::None, false),
                ..Default::default()
            })
            .await,
        "side_effects.notify",
    );
    assert_eq!(app.ticket_count().await, tickets_before, "nothing created");
    assert_eq!(
        app.history(own.id).await,
        history_before,
        "nothing written to the ticket"
    );

    // Asking for what the server would do anyway is fine.
    let loud = ok(carol
        .create_ticket(CreateTicketRequest {
            side_effects: side_effects(Notify::All, false),
            ..create_ticket_req(ticket("please tell everyone"))
        })
        .await);
    ok(carol
        .add_comment(AddCommentRequest {
            side_effects: side_effects(Notify::All, false),
            ..comment_req(own.id, "any news?", CommentVisibility::Public)
        })
        .await);
    assert_eq!(
        recorded(&app.history(loud.id).await),
        [(TicketEventKind::Created, announced())]
    );
    // The customer's own reading of its history carries the side effects too.
    let listed = every_event(
        &carol,
        ticketd::proto::ListTicketHistoryRequest {
            ticket_id: own.id,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        recorded(&listed),
        [
            (TicketEventKind::Created, announced()),
            (TicketEventKind::CommentAdded, announced()),
        ]
    );
}

async fn an_unknown_notify_value_is_invalid(app: TestApp) {
    let t = app.create_ticket(ticket("strict")).await;
    let history_before = app.history(t.id).await;
    let tickets_before = app.ticket_count().await;
    let unknown = Some(SideEffects {
        notify: 7,
        skip_automations: false,
    });

    assert_invalid(
        app.tickets()
            .create_ticket(CreateTicketRequest {
                side_effects: unknown,
                ..create_ticket_req(ticket("from the future"))
            })
            .await,
        "side_effects.notify",
    );
    assert_invalid(
        app.tickets()
            .update_ticket(UpdateTicketRequest {
                side_effects: unknown,
                ..update_ticket_req(subject_change(t.id, "from the future"), &["subject"])
            })
            .await,
        "side_effects.notify",
    );
    assert_invalid(
        app.tickets()
            .batch_archive_tickets(BatchArchiveTicketsRequest {
                requests: vec![archive_req(t.id)],
                side_effects: unknown,
                ..Default::default()
            })
            .await,
        "side_effects.notify",
    );
    // Checked before what the caller may ask: a customer learns the value is wrong, not that it is denied.
    let help = app.create_portal(portal("help centre")).await;
    let mut carol = app.tickets_as(&customer_token("carol", "org-c", help.id));
    assert_invalid(
        carol
            .create_ticket(CreateTicketRequest {
                side_effects: unknown,
                ..create_ticket_req(ticket("from the future"))
            })
            .await,
        "side_effects.notify",
    );

    assert_eq!(app.ticket_count().await, tickets_before);
    assert_eq!(app.history(t.id).await, history_before);
}

async fn a_retry_with_other_side_effects_is_another_request(app: TestApp) {
    let quiet_create = CreateTicketRequest {
        request_id: request_id(),
        side_effects: quiet(),
        ..create_ticket_req(ticket("once"))
    };
    let first = ok(app.tickets().create_ticket(quiet_create.clone()).await);
    assert_eq!(
        ok(app.tickets().create_ticket(quiet_create.clone()).await),
        first,
        "the same retry replays"
    );

    let status = assert_code(
        app.tickets()
            .create_ticket(CreateTicketRequest {
                side_effects: announced(),
                ..quiet_create
            })
            .await,
        Code::InvalidArgument,
    );
    assert_field_violation(&status, "request_id");
    assert_eq!(
        recorded(&app.history(first.id).await),
        [(TicketEventKind::Created, quiet())]
    );
}
