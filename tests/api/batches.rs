//! Batch RPCs of TicketService: create, get, update and archive up to 100 tickets, all or nothing.

use ticketd::proto::{
    ArchiveTicketRequest, BatchArchiveTicketsRequest, BatchCreateTicketsRequest,
    BatchGetTicketsRequest, BatchUpdateTicketsRequest, ListTicketsRequest, Priority,
    PropertyDefinition, PropertyType, Ticket, UpdateTicketRequest,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    batch_create_creates_every_ticket_in_order,
    batch_create_takes_1_to_100_requests,
    batch_create_with_one_invalid_item_creates_nothing,
    batch_create_retried_with_the_same_request_id_creates_once,
    batch_create_checks_properties_per_item,
    batch_create_makes_the_associations_of_each_item,
    batch_get_returns_tickets_in_the_order_of_ids,
    batch_get_of_an_unknown_id_is_not_found,
    batch_get_takes_at_most_100_ids,
    batch_update_applies_every_item,
    batch_update_with_a_stale_etag_applies_nothing,
    batch_update_refuses_the_same_ticket_twice,
    batch_update_names_the_invalid_item,
    batch_update_normalises_and_checks_properties,
    batch_archive_archives_every_ticket,
    batch_archive_with_one_archived_ticket_archives_none,
);

/// A BatchCreateTickets request with one ticket per subject.
fn batch_create(subjects: &[&str]) -> BatchCreateTicketsRequest {
    BatchCreateTicketsRequest {
        requests: subjects
            .iter()
            .map(|s| create_ticket_req(ticket(s)))
            .collect(),
        request_id: String::new(),
        ..Default::default()
    }
}

/// The subjects of `tickets`, in their order.
fn subjects(tickets: &[Ticket]) -> Vec<&str> {
    tickets.iter().map(|t| t.subject.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// BatchCreateTickets
// ---------------------------------------------------------------------------------------------------------------

async fn batch_create_creates_every_ticket_in_order(app: TestApp) {
    let mut request = batch_create(&["one", "two", "three"]);
    request.requests[1].ticket.as_mut().unwrap().priority = Priority::High.into();

    let created = ok(app.tickets().batch_create_tickets(request).await).tickets;

    assert_eq!(subjects(&created), ["one", "two", "three"]);
    assert_eq!(created[1].priority(), Priority::High);
    for t in &created {
        assert!(t.id > 0);
        assert_eq!((t.pipeline_id, t.stage_id), (0, 1), "defaults apply");
        assert!(!t.etag.is_empty());
        assert_eq!(&app.get_ticket(t.id).await, t);
    }
    assert_eq!(
        sorted_ids(ids(&created)).len(),
        3,
        "distinct ids: {:?}",
        ids(&created)
    );
    assert_eq!(app.ticket_count().await, 3);
}

async fn batch_create_takes_1_to_100_requests(app: TestApp) {
    assert_invalid(
        app.tickets().batch_create_tickets(batch_create(&[])).await,
        "requests",
    );

    let names: Vec<String> = (0..101).map(|i| format!("bulk {i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_invalid(
        app.tickets()
            .batch_create_tickets(batch_create(&refs))
            .await,
        "requests",
    );
    assert_eq!(app.ticket_count().await, 0);

    let created = ok(app
        .tickets()
        .batch_create_tickets(batch_create(&refs[..100]))
        .await)
    .tickets;
    assert_eq!(created.len(), 100, "100 is allowed");
    assert_eq!(app.ticket_count().await, 100);
}

async fn batch_create_with_one_invalid_item_creates_nothing(app: TestApp) {
    app.create_ticket(ticket("already there")).await;

    let request = batch_create(&["fine", "also fine", "   ", "fine too"]);
    assert_invalid(
        app.tickets().batch_create_tickets(request).await,
        "requests[2].ticket.subject",
    );

    assert_eq!(app.ticket_count().await, 1, "nothing was created");

    let mut bad_priority = batch_create(&["fine", "bad priority"]);
    bad_priority.requests[1].ticket.as_mut().unwrap().priority = 99;
    assert_invalid(
        app.tickets().batch_create_tickets(bad_priority).await,
        "requests[1].ticket.priority",
    );
    assert_eq!(app.ticket_count().await, 1, "nothing was created");
}

async fn batch_create_retried_with_the_same_request_id_creates_once(app: TestApp) {
    let request = BatchCreateTicketsRequest {
        request_id: request_id(),
        ..batch_create(&["a", "b"])
    };

    let first = ok(app.tickets().batch_create_tickets(request.clone()).await).tickets;
    let retried = ok(app.tickets().batch_create_tickets(request.clone()).await).tickets;

    assert_eq!(ids(&retried), ids(&first));
    assert_eq!(app.ticket_count().await, 2, "the retry created nothing");

    let other_body = BatchCreateTicketsRequest {
        request_id: request.request_id.clone(),
        ..batch_create(&["c"])
    };
    assert_invalid(
        app.tickets().batch_create_tickets(other_body).await,
        "request_id",
    );
    assert_eq!(app.ticket_count().await, 2);
}

async fn batch_create_checks_properties_per_item(app: TestApp) {
    app.create_property(PropertyDefinition {
        required: true,
        ..property_def("region", PropertyType::String)
    })
    .await;
    app.define_property("amount", PropertyType::Number).await;

    let mut request = batch_create(&["has region", "no region"]);
    request.requests[0].ticket.as_mut().unwrap().properties =
        properties(&[("region", "eu"), ("amount", "1.50")]);
    assert_invalid(
        app.tickets().batch_create_tickets(request.clone()).await,
        "requests[1].ticket.properties",
    );

    request.requests[1].ticket.as_mut().unwrap().properties =
        properties(&[("region", "us"), ("amount", "abc")]);
    assert_invalid(
        app.tickets().batch_create_tickets(request.clone()).await,
        "requests[1].ticket.properties.amount",
    );
    assert_eq!(app.ticket_count().await, 0, "nothing was created");

    request.requests[1].ticket.as_mut().unwrap().properties = properties(&[("region", "us")]);
    let created = ok(app.tickets().batch_create_tickets(request).await).tickets;
    assert_eq!(
        created[0].properties,
        properties(&[("amount", "1.5"), ("region", "eu")]),
        "values are normalised"
    );
    assert_eq!(created[1].properties, properties(&[("region", "us")]));
}

async fn batch_create_makes_the_associations_of_each_item(app: TestApp) {
    let mut request = batch_create(&["linked", "not linked", "linked too"]);
    request.requests[0].associations = vec![link("contact", "201", 0)];
    request.requests[2].associations = vec![link("company", "301", 0), link("contact", "202", 0)];

    let mut bad = request.clone();
    bad.requests[2].associations[1] = link("Bad Type", "1", 0);
    assert_invalid(
        app.tickets().batch_create_tickets(bad).await,
        "requests[2].associations[1].to.object_type",
    );
    assert_eq!(app.ticket_count().await, 0, "nothing was created");

    let created = ok(app.tickets().batch_create_tickets(request).await).tickets;
    let linked: Vec<usize> = {
        let mut counts = Vec::new();
        for t in &created {
            counts.push(app.list_all_associations(t.id, "").await.len());
        }
        counts
    };
    assert_eq!(linked, vec![1, 0, 2]);
    let third = app.list_all_associations(created[2].id, "").await;
    let types: Vec<i64> = third.iter().map(|a| a.association_type_id).collect();
    assert_eq!(types, vec![26, 16]);
}

// ---------------------------------------------------------------------------------------------------------------
// BatchGetTickets
// ---------------------------------------------------------------------------------------------------------------

async fn batch_get_returns_tickets_in_the_order_of_ids(app: TestApp) {
    let t = app.create_tickets(3).await;
    ok(app.tickets().archive_ticket(archive_req(t[1].id)).await);

    let wanted = vec![t[2].id, t[0].id, t[1].id];
    let got = ok(app
        .tickets()
        .batch_get_tickets(BatchGetTicketsRequest {
            ids: wanted.clone(),
        })
        .await)
    .tickets;

    assert_eq!(ids(&got), wanted);
    assert_eq!(got[1], t[0]);
    assert!(got[2].archived, "archived tickets are returned too");
}

async fn batch_get_of_an_unknown_id_is_not_found(app: TestApp) {
    let t = app.create_tickets(2).await;

    let status = assert_code(
        app.tickets()
            .batch_get_tickets(BatchGetTicketsRequest {
                ids: vec![t[0].id, 424_242, t[1].id],
            })
            .await,
        Code::NotFound,
    );
    assert!(
        status.message().contains("424242"),
        "message {:?} names the unknown id",
        status.message()
    );
}

async fn batch_get_takes_at_most_100_ids(app: TestApp) {
    let t = app.create_ticket(ticket("only one")).await;

    assert_invalid(
        app.tickets()
            .batch_get_tickets(BatchGetTicketsRequest {
                ids: vec![t.id; 101],
            })
            .await,
        "ids",
    );
}

// ---------------------------------------------------------------------------------------------------------------
// BatchUpdateTickets
// ---------------------------------------------------------------------------------------------------------------

async fn batch_update_applies_every_item(app: TestApp) {
    let t = app.create_tickets(3).await;

    let request = BatchUpdateTicketsRequest {
        requests: vec![
            update_ticket_req(subject_change(t[0].id, "renamed"), &["subject"]),
            update_ticket_req(
                Ticket {
                    id: t[1].id,
                    priority: Priority::Urgent.into(),
                    etag: t[1].etag.clone(),
                    ..Default::default()
                },
                &["priority"],
            ),
            update_ticket_req(stage_change(t[2].id, 4), &["stage_id"]),
        ],
        request_id: String::new(),
        ..Default::default()
    };
    let updated = ok(app.tickets().batch_update_tickets(request).await).tickets;

    assert_eq!(ids(&updated), ids(&t), "in the order of the requests");
    assert_eq!(updated[0].subject, "renamed");
    assert_eq!(updated[1].priority(), Priority::Urgent);
    assert_eq!(updated[1].subject, t[1].subject, "unmasked fields are kept");
    assert_eq!(updated[2].stage_id, 4);
    assert!(updated[2].close_time.is_some());
    for u in &updated {
        assert_eq!(&app.get_ticket(u.id).await, u);
    }
}

async fn batch_update_with_a_stale_etag_applies_nothing(app: TestApp) {
    let t = app.create_tickets(2).await;
    let current = app
        .update_ticket(subject_change(t[1].id, "changed meanwhile"), &["subject"])
        .await;

    let request = BatchUpdateTicketsRequest {
        requests: vec![
            update_ticket_req(subject_change(t[0].id, "would be renamed"), &["subject"]),
            update_ticket_req(
                Ticket {
                    id: t[1].id,
                    subject: "lost update".into(),
                    etag: t[1].etag.clone(),
                    ..Default::default()
                },
                &["subject"],
            ),
        ],
        request_id: String::new(),
        ..Default::default()
    };
    let status = assert_code(
        app.tickets().batch_update_tickets(request).await,
        Code::Aborted,
    );
    assert!(
        status.message().contains("requests[1]"),
        "message {:?} names the stale item",
        status.message()
    );

    assert_eq!(
        app.get_ticket(t[0].id).await,
        t[0],
        "item 0 was not applied"
    );
    assert_eq!(app.get_ticket(t[1].id).await, current);
}

async fn batch_update_refuses_the_same_ticket_twice(app: TestApp) {
    let t = app.create_ticket(ticket("twice")).await;

    let request = BatchUpdateTicketsRequest {
        requests: vec![
            update_ticket_req(subject_change(t.id, "first"), &["subject"]),
            update_ticket_req(
                Ticket {
                    id: t.id,
                    priority: Priority::Low.into(),
                    ..Default::default()
                },
                &["priority"],
            ),
        ],
        request_id: String::new(),
        ..Default::default()
    };
    assert_invalid(
        app.tickets().batch_update_tickets(request).await,
        "requests[1].ticket.id",
    );
    assert_eq!(app.get_ticket(t.id).await, t);
}

async fn batch_update_names_the_invalid_item(app: TestApp) {
    let t = app.create_tickets(4).await;
    let mut requests: Vec<UpdateTicketRequest> = t
        .iter()
        .map(|x| {
            update_ticket_req(
                Ticket {
                    id: x.id,
                    subject: format!("{} (edited)", x.subject),
                    ..Default::default()
                },
                &["subject"],
            )
        })
        .collect();
    requests[3] = update_ticket_req(
        Ticket {
            id: t[3].id,
            priority: 99,
            ..Default::default()
        },
        &["priority"],
    );

    assert_invalid(
        app.tickets()
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: requests.clone(),
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "requests[3].ticket.priority",
    );

    requests[3] = update_ticket_req(subject_change(t[3].id, "  "), &["subject"]);
    assert_invalid(
        app.tickets()
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests,
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "requests[3].ticket.subject",
    );

    for x in &t {
        assert_eq!(&app.get_ticket(x.id).await, x, "nothing was applied");
    }
}

async fn batch_update_normalises_and_checks_properties(app: TestApp) {
    app.define_property("amount", PropertyType::Number).await;
    let t = app.create_tickets(2).await;
    let set = |id: i64, value: &str| {
        update_ticket_req(
            Ticket {
                id,
                properties: properties(&[("amount", value)]),
                ..Default::default()
            },
            &["properties.amount"],
        )
    };

    assert_invalid(
        app.tickets()
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: vec![set(t[0].id, "1"), set(t[1].id, "abc")],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "requests[1].ticket.properties.amount",
    );
    assert_eq!(app.get_ticket(t[0].id).await, t[0], "nothing was applied");

    let updated = ok(app
        .tickets()
        .batch_update_tickets(BatchUpdateTicketsRequest {
            requests: vec![set(t[0].id, "1e3"), set(t[1].id, "2.50")],
            request_id: String::new(),
            ..Default::default()
        })
        .await)
    .tickets;
    assert_eq!(updated[0].properties["amount"], "1000");
    assert_eq!(updated[1].properties["amount"], "2.5");
}

// ---------------------------------------------------------------------------------------------------------------
// BatchArchiveTickets
// ---------------------------------------------------------------------------------------------------------------

async fn batch_archive_archives_every_ticket(app: TestApp) {
    let t = app.create_tickets(3).await;

    let archived = ok(app
        .tickets()
        .batch_archive_tickets(BatchArchiveTicketsRequest {
            requests: vec![
                archive_req(t[0].id),
                ArchiveTicketRequest {
                    id: t[2].id,
                    etag: t[2].etag.clone(),
                    ..Default::default()
                },
            ],
            request_id: String::new(),
            ..Default::default()
        })
        .await)
    .tickets;

    assert_eq!(ids(&archived), vec![t[0].id, t[2].id]);
    assert!(
        archived
            .iter()
            .all(|x| x.archived && x.archive_time.is_some())
    );
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await),
        vec![t[1].id]
    );
}

async fn batch_archive_with_one_archived_ticket_archives_none(app: TestApp) {
    let t = app.create_tickets(3).await;
    let already = ok(app.tickets().archive_ticket(archive_req(t[1].id)).await);

    let status = assert_code(
        app.tickets()
            .batch_archive_tickets(BatchArchiveTicketsRequest {
                requests: vec![
                    archive_req(t[0].id),
                    archive_req(t[1].id),
                    archive_req(t[2].id),
                ],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("requests[1]"),
        "message {:?} names the archived item",
        status.message()
    );

    assert_eq!(app.get_ticket(t[0].id).await, t[0], "not archived");
    assert_eq!(app.get_ticket(t[2].id).await, t[2], "not archived");
    assert_eq!(app.get_ticket(t[1].id).await, already);
}
