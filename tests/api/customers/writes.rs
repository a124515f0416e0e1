//! Customer writes (item 6): customers create tickets as requesters of their own organization, update only
//! editable fields of visible tickets, and never archive or restore.

use ticketd::proto::{
    AssociationSpec, BatchArchiveTicketsRequest, BatchCreateTicketsRequest,
    BatchUpdateTicketsRequest, CreateTicketRequest, GetTicketRequest, Priority, Ticket,
    TicketEventKind, UpdateTicketRequest,
};
use tonic::Code;

use super::*;

both_databases!(
    customers_create_tickets_as_requester_of_their_own_organization,
    customer_creates_refuse_every_field_the_portal_does_not_let_them_set,
    customers_update_only_editable_fields_of_visible_tickets,
    customers_cannot_archive_or_restore,
);

async fn customers_create_tickets_as_requester_of_their_own_organization(app: TestApp) {
    let world = setup(&app).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);

    let created = ok(alice
        .create_ticket(create_ticket_req(Ticket {
            subject: "Coffee machine broken".to_owned(),
            content: "It leaks".to_owned(),
            priority: Priority::Medium.into(),
            properties: properties(&[("region", "emea")]),
            ..Default::default()
        }))
        .await);
    let stored = app.get_ticket(created.id).await;
    assert_eq!(
        stored.requester_id, ALICE.sub,
        "the customer is the requester"
    );
    assert_eq!(
        stored.organization_id, ORG_A,
        "its organization owns the ticket"
    );
    assert_eq!(stored.priority(), Priority::Medium);
    assert_eq!(stored.properties, properties(&[("region", "emea")]));
    assert_eq!(
        created,
        world.redact(&world.p1, &stored),
        "the response is redacted like any read"
    );
    assert!(created.requester_id.is_empty() && created.organization_id.is_empty());
    let history = app.history(created.id).await;
    assert_eq!(history[0].kind(), TicketEventKind::Created);
    assert_eq!(history[0].actor_id, ALICE.sub);
    assert_eq!(
        followers_as(&agent(&app), created.id).await,
        [ALICE.sub],
        "the requester follows its ticket"
    );
    // Amy (same organization) sees it, bob does not.
    let mut amy = world.tickets_as(&app, AMY, Which::P1);
    assert_eq!(
        ok(amy.get_ticket(GetTicketRequest { id: created.id }).await).subject,
        "Coffee machine broken"
    );
    assert_not_found(
        world
            .tickets_as(&app, BOB, Which::P1)
            .get_ticket(GetTicketRequest { id: created.id })
            .await,
        "ticket",
        created.id,
    );

    // Naming itself and its own organization is allowed.
    let explicit = ok(alice
        .create_ticket(create_ticket_req(Ticket {
            subject: "Explicitly mine".to_owned(),
            requester_id: ALICE.sub.to_owned(),
            organization_id: ORG_A.to_owned(),
            ..Default::default()
        }))
        .await);
    let stored = app.get_ticket(explicit.id).await;
    assert_eq!(
        (
            stored.requester_id.as_str(),
            stored.organization_id.as_str()
        ),
        (ALICE.sub, ORG_A)
    );

    // A batch: every ticket is the customer's, every response redacted.
    let batch = ok(alice
        .batch_create_tickets(BatchCreateTicketsRequest {
            requests: vec![
                create_ticket_req(ticket("batch one")),
                create_ticket_req(Ticket {
                    subject: "batch two".to_owned(),
                    priority: Priority::Urgent.into(),
                    ..Default::default()
                }),
            ],
            request_id: String::new(),
            ..Default::default()
        })
        .await);
    assert_eq!(batch.tickets.len(), 2);
    for returned in &batch.tickets {
        let stored = app.get_ticket(returned.id).await;
        assert_eq!(
            (
                stored.requester_id.as_str(),
                stored.organization_id.as_str()
            ),
            (ALICE.sub, ORG_A)
        );
        assert_eq!(returned, &world.redact(&world.p1, &stored));
    }

    // Through P2: an allowed type, nothing else, and the response shows only the stage.
    let mut amy_p2 = world.tickets_as(&app, AMY, Which::P2);
    let question = ok(amy_p2
        .create_ticket(create_ticket_req(Ticket {
            subject: "How do I print?".to_owned(),
            ticket_type: QUESTION.to_owned(),
            ..Default::default()
        }))
        .await);
    let stored = app.get_ticket(question.id).await;
    assert_eq!(
        (
            stored.requester_id.as_str(),
            stored.organization_id.as_str(),
            stored.ticket_type.as_str()
        ),
        (AMY.sub, ORG_A, QUESTION)
    );
    assert_eq!(question, world.redact(&world.p2, &stored));
    assert!(
        question.ticket_type.is_empty(),
        "P2 does not list ticket_type"
    );
    assert_eq!(
        ok(amy_p2
            .get_ticket(GetTicketRequest { id: question.id })
            .await)
        .id,
        question.id
    );
}

async fn customer_creates_refuse_every_field_the_portal_does_not_let_them_set(app: TestApp) {
    let world = setup(&app).await;
    let before = agent_view(&app).await.len();
    let subject = |s: &str| Ticket {
        subject: s.to_owned(),
        ..Default::default()
    };
    let p1 = [
        (
            Ticket {
                requester_id: AMY.sub.to_owned(),
                ..subject("for amy")
            },
            "ticket.requester_id",
        ),
        (
            Ticket {
                organization_id: ORG_B.to_owned(),
                ..subject("for org-b")
            },
            "ticket.organization_id",
        ),
        (
            Ticket {
                assignee_id: AGENT.to_owned(),
                ..subject("assigned")
            },
            "ticket.assignee_id",
        ),
        (
            Ticket {
                project_id: PROJ_1.to_owned(),
                ..subject("in a project")
            },
            "ticket.project_id",
        ),
        (
            Ticket {
                pipeline_id: 7,
                ..subject("in a pipeline")
            },
            "ticket.pipeline_id",
        ),
        (
            Ticket {
                stage_id: world.stages[1].id,
                ..subject("in a stage (visible, not editable)")
            },
            "ticket.stage_id",
        ),
        (
            Ticket {
                tags: strings(&["vip"]),
                ..subject("tagged")
            },
            "ticket.tags",
        ),
        (
            Ticket {
                properties: properties(&[("internal_score", "99")]),
                ..subject("scored")
            },
            "ticket.properties.internal_score",
        ),
    ];
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    for (ticket, field) in p1 {
        assert_field_denied(alice.create_ticket(create_ticket_req(ticket)).await, field);
    }
    assert_field_denied(
        alice
            .create_ticket(CreateTicketRequest {
                associations: vec![AssociationSpec {
                    to: Some(object("contact", "201")),
                    association_type_id: 0,
                }],
                ..create_ticket_req(subject("linked"))
            })
            .await,
        "associations",
    );
    assert_field_denied(
        alice
            .batch_create_tickets(BatchCreateTicketsRequest {
                requests: vec![
                    create_ticket_req(subject("fine")),
                    create_ticket_req(Ticket {
                        requester_id: BOB.sub.to_owned(),
                        ..subject("for bob")
                    }),
                ],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "requests[1].ticket.requester_id",
    );

    let p2 = [
        (
            Ticket {
                ticket_type: INCIDENT.to_owned(),
                ..subject("an incident")
            },
            "ticket.ticket_type",
        ),
        (subject("no type"), "ticket.ticket_type"),
        (
            Ticket {
                ticket_type: QUESTION.to_owned(),
                priority: Priority::High.into(),
                ..subject("prioritised")
            },
            "ticket.priority",
        ),
        (
            Ticket {
                ticket_type: QUESTION.to_owned(),
                properties: properties(&[("region", "emea")]),
                ..subject("region is not listed by P2")
            },
            "ticket.properties.region",
        ),
    ];
    let mut amy_p2 = world.tickets_as(&app, AMY, Which::P2);
    for (ticket, field) in p2 {
        assert_field_denied(amy_p2.create_ticket(create_ticket_req(ticket)).await, field);
    }
    assert_eq!(
        agent_view(&app).await.len(),
        before,
        "no refused create left a ticket behind"
    );
}

async fn customers_update_only_editable_fields_of_visible_tickets(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let update =
        |ticket: Ticket, paths: &[&str]| update_ticket_req(Ticket { id: a, ..ticket }, paths);
    let original_etag = app.get_ticket(a).await.etag;

    // Editable: subject, content (always), priority and region (P1).
    let updated = ok(alice
        .update_ticket(update(
            Ticket {
                subject: "Printer jammed again".to_owned(),
                content: "Paper everywhere".to_owned(),
                priority: Priority::Urgent.into(),
                properties: properties(&[("region", "amer")]),
                ..Default::default()
            },
            &["subject", "content", "priority", "properties.region"],
        ))
        .await);
    let stored = app.get_ticket(a).await;
    assert_eq!(stored.subject, "Printer jammed again");
    assert_eq!(stored.content, "Paper everywhere");
    assert_eq!(stored.priority(), Priority::Urgent);
    assert_eq!(stored.properties["region"], "amer");
    assert_eq!(
        stored.properties["internal_score"], "5",
        "changing one property keeps the hidden ones"
    );
    assert_eq!(stored.assignee_id, "agent-2");
    assert_eq!(
        updated,
        world.redact(&world.p1, &stored),
        "the response is redacted"
    );
    let last = app.history(a).await.pop().expect("an event");
    assert_eq!(last.actor_id, ALICE.sub);

    // Not editable through P1 (some visible, some hidden): refused naming the field, and nothing changes.
    let refused = [
        (
            Ticket {
                assignee_id: "alice".to_owned(),
                ..Default::default()
            },
            "assignee_id",
        ),
        (
            Ticket {
                properties: properties(&[("internal_score", "0")]),
                ..Default::default()
            },
            "properties.internal_score",
        ),
        (
            Ticket {
                stage_id: world.stages[3].id,
                ..Default::default()
            },
            "stage_id",
        ),
        (
            Ticket {
                tags: strings(&["mine"]),
                ..Default::default()
            },
            "tags",
        ),
        (
            Ticket {
                requester_id: AMY.sub.to_owned(),
                ..Default::default()
            },
            "requester_id",
        ),
        (
            Ticket {
                organization_id: ORG_B.to_owned(),
                ..Default::default()
            },
            "organization_id",
        ),
        (
            Ticket {
                project_id: PROJ_1.to_owned(),
                ..Default::default()
            },
            "project_id",
        ),
        (
            Ticket {
                ticket_type: QUESTION.to_owned(),
                ..Default::default()
            },
            "ticket_type",
        ),
        (
            Ticket {
                pipeline_id: 0,
                ..Default::default()
            },
            "pipeline_id",
        ),
        (
            Ticket {
                properties: properties(&[("region", "emea")]),
                ..Default::default()
            },
            "properties",
        ),
    ];
    for (ticket, path) in refused {
        assert_field_denied(
            alice.update_ticket(update(ticket, &[path])).await,
            &format!("ticket.{path}"),
        );
    }
    // With an empty mask the fields set count.
    assert_field_denied(
        alice
            .update_ticket(update(
                Ticket {
                    subject: "sneaky".to_owned(),
                    assignee_id: "alice".to_owned(),
                    ..Default::default()
                },
                &[],
            ))
            .await,
        "ticket.assignee_id",
    );
    assert_eq!(
        app.get_ticket(a).await,
        stored,
        "no refused update changed anything (same etag)"
    );

    // A stale etag is ABORTED for customers too.
    let stale = assert_code(
        alice
            .update_ticket(update(
                Ticket {
                    subject: "stale".to_owned(),
                    etag: original_etag,
                    ..Default::default()
                },
                &["subject"],
            ))
            .await,
        Code::Aborted,
    );
    assert!(stale.message().contains("etag"));

    // Invisible tickets: NOT_FOUND, even for an editable field.
    let b = world.id("b-bob-q");
    assert_not_found(
        alice
            .update_ticket(update_ticket_req(
                subject_change(b, "hijacked"),
                &["subject"],
            ))
            .await,
        "ticket",
        b,
    );
    let mut alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    let incident = world.id("a-alice-i");
    assert_not_found(
        alice_p2
            .update_ticket(update_ticket_req(
                subject_change(incident, "type not allowed"),
                &["subject"],
            ))
            .await,
        "ticket",
        incident,
    );
    // P2 lets customers edit subject and content only.
    assert_field_denied(
        alice_p2
            .update_ticket(update(
                Ticket {
                    priority: Priority::Low.into(),
                    ..Default::default()
                },
                &["priority"],
            ))
            .await,
        "ticket.priority",
    );
    assert_field_denied(
        alice_p2
            .update_ticket(update(
                Ticket {
                    properties: properties(&[("region", "emea")]),
                    ..Default::default()
                },
                &["properties.region"],
            ))
            .await,
        "ticket.properties.region",
    );
    let p2_updated = ok(alice_p2
        .update_ticket(update(
            Ticket {
                subject: "Printer jammed (P2)".to_owned(),
                ..Default::default()
            },
            &["subject"],
        ))
        .await);
    assert_eq!(
        p2_updated,
        world.redact(&world.p2, &app.get_ticket(a).await)
    );

    // Batches: all or nothing, NOT_FOUND naming the index, redacted answers.
    let before_batch = app.get_ticket(a).await;
    let item = |id: i64, subject: &str| {
        update_ticket_req(
            Ticket {
                id,
                subject: subject.to_owned(),
                ..Default::default()
            },
            &["subject"],
        )
    };
    let status = assert_code(
        alice
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: vec![item(a, "batch a"), item(b, "batch b")],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(
        status.message(),
        format!("requests[1]: ticket {b} not found")
    );
    assert_field_denied(
        alice
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests: vec![
                    item(a, "batch a"),
                    UpdateTicketRequest {
                        ticket: Some(Ticket {
                            id: world.id("a-amy-q"),
                            assignee_id: "alice".to_owned(),
                            ..Default::default()
                        }),
                        update_mask: mask(&["assignee_id"]),
                        request_id: String::new(),
                        ..Default::default()
                    },
                ],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "requests[1].ticket.assignee_id",
    );
    assert_eq!(
        app.get_ticket(a).await,
        before_batch,
        "refused batches change nothing"
    );
    let amy_ticket = world.id("a-amy-q");
    let batch = ok(alice
        .batch_update_tickets(BatchUpdateTicketsRequest {
            requests: vec![item(a, "batch a"), item(amy_ticket, "batch amy")],
            request_id: String::new(),
            ..Default::default()
        })
        .await);
    let tickets = agent_view(&app).await;
    assert_eq!(
        batch.tickets,
        vec![
            world.redact(&world.p1, &tickets[&a]),
            world.redact(&world.p1, &tickets[&amy_ticket])
        ]
    );
}

async fn customers_cannot_archive_or_restore(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    assert_not_for_customers(alice.archive_ticket(archive_req(a)).await, "ArchiveTicket");
    assert_not_for_customers(
        alice
            .batch_archive_tickets(BatchArchiveTicketsRequest {
                requests: vec![archive_req(a)],
                request_id: String::new(),
                ..Default::default()
            })
            .await,
        "BatchArchiveTickets",
    );
    assert!(
        !app.get_ticket(a).await.archived,
        "the ticket is not archived"
    );

    ok(agent(&app).archive_ticket(archive_req(a)).await);
    assert_not_for_customers(alice.restore_ticket(restore_req(a)).await, "RestoreTicket");
    assert!(
        app.get_ticket(a).await.archived,
        "the ticket stays archived"
    );
    // An archived ticket stays readable (Get) but leaves the customer's listing.
    let fetched = ok(alice.get_ticket(GetTicketRequest { id: a }).await);
    assert!(fetched.archived);
    assert!(!ids(&list_all_as(&alice, 50).await).contains(&a));
}
