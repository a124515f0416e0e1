//! Comments (AddComment, ListComments) and the per-ticket history (ListTicketHistory), both recording the
//! authenticated caller (the token's `sub`).

use ticketd::proto::{
    AddCommentRequest, ArchiveTicketRequest, BatchCreateTicketsRequest, Comment, CommentVisibility,
    FieldChange, ListCommentsRequest, ListTicketHistoryRequest, PropertyType, RestoreTicketRequest,
    Ticket, TicketEventKind,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    // Comments
    add_comment_records_the_caller_as_author,
    add_comment_validates_body_visibility_and_ticket,
    add_comment_refuses_blank_and_overlong_bodies,
    add_comment_retried_with_the_same_request_id_adds_once,
    list_comments_pages_oldest_first_including_internal_ones,
    // History
    history_records_every_kind_of_change_in_order,
    property_changes_appear_as_properties_fields,
    failed_update_adds_no_event,
    batch_create_writes_one_created_event_per_ticket,
    batch_update_and_archive_write_events_per_ticket,
    retried_update_adds_no_event,
    history_of_an_unknown_ticket_is_not_found,
    history_pages,
);

const ACTOR: &str = "agent-7";

/// A field change as events carry it.
fn change(field: &str, old_value: &str, new_value: &str) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old_value: old_value.to_owned(),
        new_value: new_value.to_owned(),
    }
}

/// Every comment of a ticket, `page_size` a page (0: the default), checking that no page holds more.
async fn list_all_comments(app: &TestApp, ticket_id: i64, page_size: i32) -> Vec<Comment> {
    every_page("ListComments", String::new(), |page_token| {
        let mut client = app.tickets();
        let request = ListCommentsRequest {
            ticket_id,
            page_size,
            page_token,
        };
        async move {
            let page = ok(client.list_comments(request).await);
            if page_size > 0 {
                assert!(page.comments.len() <= page_size as usize);
            }
            (page.comments, page.next_page_token)
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------------------------
// Comments
// ---------------------------------------------------------------------------------------------------------------

async fn add_comment_records_the_caller_as_author(app: TestApp) {
    let t = app.create_ticket(ticket("commented")).await;

    let by_agent = ok(app
        .tickets()
        .add_comment(with_actor(
            comment_req(t.id, "We are on it.", CommentVisibility::Public),
            ACTOR,
        ))
        .await);
    assert!(by_agent.id > 0);
    assert_eq!(by_agent.ticket_id, t.id);
    assert_eq!(by_agent.author_id, ACTOR);
    assert_eq!(by_agent.body, "We are on it.");
    assert_eq!(by_agent.visibility(), CommentVisibility::Public);
    assert!(by_agent.create_time.is_some());

    let anonymous = ok(app
        .tickets()
        .add_comment(comment_req(
            t.id,
            "note to self",
            CommentVisibility::Internal,
        ))
        .await);
    assert_eq!(
        anonymous.author_id, TEST_ADMIN,
        "the default clients' token names the author"
    );
    assert_eq!(anonymous.visibility(), CommentVisibility::Internal);

    assert_eq!(
        list_all_comments(&app, t.id, 0).await,
        vec![by_agent, anonymous]
    );
}

async fn add_comment_validates_body_visibility_and_ticket(app: TestApp) {
    let t = app.create_ticket(ticket("strict comments")).await;

    assert_invalid(
        app.tickets()
            .add_comment(comment_req(t.id, "", CommentVisibility::Public))
            .await,
        "body",
    );
    assert_invalid(
        app.tickets()
            .add_comment(comment_req(t.id, "hello", CommentVisibility::Unspecified))
            .await,
        "visibility",
    );
    assert_code(
        app.tickets()
            .add_comment(comment_req(424_242, "hello", CommentVisibility::Public))
            .await,
        Code::NotFound,
    );

    ok(app.tickets().archive_ticket(archive_req(t.id)).await);
    assert_code(
        app.tickets()
            .add_comment(comment_req(t.id, "too late", CommentVisibility::Public))
            .await,
        Code::FailedPrecondition,
    );

    assert!(
        list_all_comments(&app, t.id, 0).await.is_empty(),
        "no comment was added"
    );
}

async fn add_comment_refuses_blank_and_overlong_bodies(app: TestApp) {
    let t = app.create_ticket(ticket("strict bodies")).await;

    let longest = "x".repeat(65_536);
    let kept = ok(app
        .tickets()
        .add_comment(comment_req(t.id, &longest, CommentVisibility::Public))
        .await);
    assert_eq!(kept.body.len(), 65_536);

    assert_invalid(
        app.tickets()
            .add_comment(comment_req(
                t.id,
                &"x".repeat(65_537),
                CommentVisibility::Public,
            ))
            .await,
        "body",
    );
    assert_invalid(
        app.tickets()
            .add_comment(comment_req(t.id, " \n\t ", CommentVisibility::Public))
            .await,
        "body",
    );
    assert_eq!(list_all_comments(&app, t.id, 0).await, vec![kept]);
}

async fn add_comment_retried_with_the_same_request_id_adds_once(app: TestApp) {
    let t = app.create_ticket(ticket("retried comment")).await;
    let request = AddCommentRequest {
        request_id: request_id(),
        ..comment_req(t.id, "only once", CommentVisibility::Public)
    };

    let first = ok(app.tickets().add_comment(request.clone()).await);
    let retried = ok(app.tickets().add_comment(request).await);

    assert_eq!(retried, first);
    assert_eq!(list_all_comments(&app, t.id, 0).await, vec![first]);
}

async fn list_comments_pages_oldest_first_including_internal_ones(app: TestApp) {
    let t = app.create_ticket(ticket("long thread")).await;
    let other = app.create_ticket(ticket("other thread")).await;
    ok(app
        .tickets()
        .add_comment(comment_req(
            other.id,
            "elsewhere",
            CommentVisibility::Public,
        ))
        .await);

    let mut added = Vec::new();
    for i in 0..5 {
        let visibility = if i % 2 == 0 {
            CommentVisibility::Public
        } else {
            CommentVisibility::Internal
        };
        added.push(ok(app
            .tickets()
            .add_comment(comment_req(t.id, &format!("comment {i}"), visibility))
            .await));
    }

    let listed = list_all_comments(&app, t.id, 2).await;
    assert_eq!(listed, added, "oldest first, internal ones included");
    assert_eq!(
        listed
            .iter()
            .filter(|c| c.visibility() == CommentVisibility::Internal)
            .count(),
        2
    );

    let first_page = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: t.id,
            page_size: 2,
            ..Default::default()
        })
        .await);
    assert_eq!(first_page.comments, added[..2].to_vec());
    assert!(!first_page.next_page_token.is_empty());
}

// ---------------------------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------------------------

async fn history_records_every_kind_of_change_in_order(app: TestApp) {
    let created = ok(app
        .tickets()
        .create_ticket(with_actor(create_ticket_req(ticket("old subject")), ACTOR))
        .await);
    let id = created.id;
    ok(app
        .tickets()
        .update_ticket(with_actor(
            update_ticket_req(
                Ticket {
                    id,
                    subject: "new subject".into(),
                    ..Default::default()
                },
                &["subject"],
            ),
            ACTOR,
        ))
        .await);
    ok(app
        .tickets()
        .update_ticket(with_actor(
            update_ticket_req(
                Ticket {
                    id,
                    stage_id: 2,
                    ..Default::default()
                },
                &["stage_id"],
            ),
            ACTOR,
        ))
        .await);
    let comment = ok(app
        .tickets()
        .add_comment(with_actor(
            comment_req(id, "looking into it", CommentVisibility::Internal),
            ACTOR,
        ))
        .await);
    let association = ok(app
        .associations()
        .create_association(with_actor(associate(id, "contact", "201", 0), ACTOR))
        .await);
    ok(app
        .tickets()
        .archive_ticket(with_actor(
            ArchiveTicketRequest {
                id,
                ..Default::default()
            },
            ACTOR,
        ))
        .await);
    ok(app
        .tickets()
        .restore_ticket(with_actor(
            RestoreTicketRequest {
                id,
                ..Default::default()
            },
            ACTOR,
        ))
        .await);

    let events = app.history(id).await;

    assert_eq!(
        kinds(&events),
        vec![
            TicketEventKind::Created,
            TicketEventKind::Updated,
            TicketEventKind::StageChanged,
            TicketEventKind::CommentAdded,
            TicketEventKind::AssociationAdded,
            TicketEventKind::Archived,
            TicketEventKind::Restored,
        ]
    );
    for pair in events.windows(2) {
        assert!(
            pair[1].event_id > pair[0].event_id,
            "event ids strictly increase: {} then {}",
            pair[0].event_id,
            pair[1].event_id
        );
    }
    for event in &events {
        assert_eq!(event.actor_id, ACTOR, "actor of {event:?}");
        assert_eq!(event.ticket_id, id);
        assert!(event.create_time.is_some());
    }

    assert_eq!(
        change_of(&events[1], "subject"),
        &change("subject", "old subject", "new subject")
    );
    assert_eq!(
        change_of(&events[2], "stage_id"),
        &change("stage_id", "1", "2")
    );
    assert_eq!(events[3].comment.as_ref(), Some(&comment));
    let linked = events[4]
        .association
        .as_ref()
        .expect("the association is set");
    assert_eq!(linked.to, association.to);
    assert_eq!(linked.association_type_id, 16);
}

async fn property_changes_appear_as_properties_fields(app: TestApp) {
    app.define_property("tier", PropertyType::String).await;
    let t = app.create_ticket(ticket("property history")).await;

    app.update_ticket(
        property_change(t.id, &[("tier", "gold")]),
        &["properties.tier"],
    )
    .await;
    app.update_ticket(
        property_change(t.id, &[("tier", "platinum")]),
        &["properties.tier"],
    )
    .await;

    let events = app.history(t.id).await;
    assert_eq!(
        kinds(&events),
        vec![
            TicketEventKind::Created,
            TicketEventKind::Updated,
            TicketEventKind::Updated
        ]
    );
    assert_eq!(
        change_of(&events[1], "properties.tier"),
        &change("properties.tier", "", "gold")
    );
    assert_eq!(
        change_of(&events[2], "properties.tier"),
        &change("properties.tier", "gold", "platinum")
    );
    assert!(
        events.iter().all(|e| e.actor_id == TEST_ADMIN),
        "the default clients' token names the actor"
    );

    // Values appear in their normalised form.
    app.define_property("amount", PropertyType::Number).await;
    app.update_ticket(
        property_change(t.id, &[("amount", "1.50")]),
        &["properties.amount"],
    )
    .await;
    let events = app.history(t.id).await;
    assert_eq!(
        change_of(events.last().unwrap(), "properties.amount"),
        &change("properties.amount", "", "1.5")
    );
}

async fn failed_update_adds_no_event(app: TestApp) {
    let original = app.create_ticket(ticket("contested")).await;
    app.update_ticket(
        subject_change(original.id, "changed by a colleague"),
        &["subject"],
    )
    .await;
    let before = app.history(original.id).await;

    assert_code(
        app.tickets()
            .update_ticket(update_ticket_req(
                Ticket {
                    id: original.id,
                    subject: "my stale change".into(),
                    etag: original.etag.clone(),
                    ..Default::default()
                },
                &["subject"],
            ))
            .await,
        Code::Aborted,
    );
    assert_invalid(
        app.tickets()
            .update_ticket(update_ticket_req(
                subject_change(original.id, "   "),
                &["subject"],
            ))
            .await,
        "ticket.subject",
    );

    assert_eq!(
        app.history(original.id).await,
        before,
        "no event for failed updates"
    );
    assert_eq!(
        kinds(&before),
        vec![TicketEventKind::Created, TicketEventKind::Updated]
    );
}

async fn batch_create_writes_one_created_event_per_ticket(app: TestApp) {
    let created = ok(app
        .tickets()
        .batch_create_tickets(with_actor(
            BatchCreateTicketsRequest {
                requests: ["one", "two", "three"]
                    .iter()
                    .map(|s| create_ticket_req(ticket(s)))
                    .collect(),
                request_id: String::new(),
                ..Default::default()
            },
            ACTOR,
        ))
        .await)
    .tickets;
    assert_eq!(created.len(), 3);

    // Event ids increase across tickets too.
    let other = app.create_ticket(ticket("after the batch")).await;
    let after = app.history(other.id).await;

    let mut event_ids = Vec::new();
    for t in &created {
        let events = app.history(t.id).await;
        assert_eq!(
            kinds(&events),
            vec![TicketEventKind::Created],
            "ticket {}",
            t.id
        );
        assert_eq!(events[0].ticket_id, t.id);
        assert_eq!(events[0].actor_id, ACTOR);
        event_ids.push(events[0].event_id);
    }
    assert_eq!(
        sorted_ids(event_ids.clone()).len(),
        3,
        "distinct events: {event_ids:?}"
    );
    assert!(
        event_ids.iter().all(|id| *id < after[0].event_id),
        "a later ticket's event has a larger id: {event_ids:?} then {}",
        after[0].event_id
    );
}

async fn batch_update_and_archive_write_events_per_ticket(app: TestApp) {
    let t = app.create_tickets(2).await;

    ok(app
        .tickets()
        .batch_update_tickets(with_actor(
            ticketd::proto::BatchUpdateTicketsRequest {
                requests: t
                    .iter()
                    .map(|x| {
                        update_ticket_req(
                            Ticket {
                                id: x.id,
                                subject: format!("{} (batch)", x.subject),
                                ..Default::default()
                            },
                            &["subject"],
                        )
                    })
                    .collect(),
                request_id: String::new(),
                ..Default::default()
            },
            ACTOR,
        ))
        .await);
    ok(app
        .tickets()
        .batch_archive_tickets(with_actor(
            ticketd::proto::BatchArchiveTicketsRequest {
                requests: t.iter().map(|x| archive_req(x.id)).collect(),
                request_id: String::new(),
                ..Default::default()
            },
            ACTOR,
        ))
        .await);

    for x in &t {
        let events = app.history(x.id).await;
        assert_eq!(
            kinds(&events),
            vec![
                TicketEventKind::Created,
                TicketEventKind::Updated,
                TicketEventKind::Archived
            ],
            "ticket {}",
            x.id
        );
        assert_eq!(
            change_of(&events[1], "subject"),
            &change("subject", &x.subject, &format!("{} (batch)", x.subject))
        );
        assert_eq!(events[1].actor_id, ACTOR);
        assert_eq!(events[2].actor_id, ACTOR);
    }
}

async fn retried_update_adds_no_event(app: TestApp) {
    let t = app.create_ticket(ticket("retried")).await;
    let request = ticketd::proto::UpdateTicketRequest {
        request_id: request_id(),
        ..update_ticket_req(subject_change(t.id, "once"), &["subject"])
    };

    ok(app.tickets().update_ticket(request.clone()).await);
    ok(app.tickets().update_ticket(request).await);

    assert_eq!(
        kinds(&app.history(t.id).await),
        vec![TicketEventKind::Created, TicketEventKind::Updated]
    );
}

async fn history_of_an_unknown_ticket_is_not_found(app: TestApp) {
    assert_code(
        app.tickets()
            .list_comments(ListCommentsRequest {
                ticket_id: 424_242,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_code(
        app.tickets()
            .list_ticket_history(ListTicketHistoryRequest {
                ticket_id: 424_242,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

async fn history_pages(app: TestApp) {
    let t = app.create_ticket(ticket("v0")).await;
    for i in 1..=4 {
        app.update_ticket(
            Ticket {
                id: t.id,
                subject: format!("v{i}"),
                ..Default::default()
            },
            &["subject"],
        )
        .await;
    }
    let everything = app.history(t.id).await;
    assert_eq!(everything.len(), 5);

    let mut request = ListTicketHistoryRequest {
        ticket_id: t.id,
        page_size: 2,
        ..Default::default()
    };
    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let page = ok(app.tickets().list_ticket_history(request.clone()).await);
        sizes.push(page.events.len());
        paged.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(paged, everything);
    let subjects: Vec<String> = paged[1..]
        .iter()
        .map(|e| change_of(e, "subject").new_value.clone())
        .collect();
    assert_eq!(subjects, strings(&["v1", "v2", "v3", "v4"]));
}
