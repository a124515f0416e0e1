//! ImportTickets as a desk moving its history in uses it: historical times and authors kept, nobody notified,
//! every item answered in order and only once committed, and a stream that breaks can be sent again whole
//! without importing anything twice.

use std::collections::{BTreeMap, BTreeSet};

use prost_types::Timestamp;
use ticketd::proto::{
    CommentVisibility, ImportComment, ImportItem, ImportOptions, ImportTicketsRequest,
    ImportTicketsResponse, ListCommentsRequest, Notify, OnConflict, SideEffects, Ticket,
    TicketState, import_tickets_request::Kind,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use crate::support::*;

both_databases!(
    imported_tickets_keep_their_times_authors_and_comments_and_notify_nobody,
    each_item_is_answered_in_order_and_a_bad_one_does_not_sink_the_others,
    a_stream_cut_by_the_client_and_sent_again_whole_imports_every_item_once,
    on_conflict_update_overwrites_and_does_not_repeat_comments,
    the_first_message_must_carry_the_options_and_only_it,
    importers_need_the_import_scope_and_customers_may_not_import,
    side_effects_chosen_in_the_options_are_recorded,
);

/// 2019-03-04 10:00 UTC plus `hours`.
fn past(hours: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_551_693_600 + hours * 3600,
        nanos: 0,
    })
}

fn options(on_conflict: OnConflict) -> ImportTicketsRequest {
    ImportTicketsRequest {
        kind: Some(Kind::Options(ImportOptions {
            side_effects: None,
            on_conflict: on_conflict.into(),
        })),
    }
}

fn item(offset: i64, ticket: Ticket, comments: Vec<ImportComment>) -> ImportTicketsRequest {
    ImportTicketsRequest {
        kind: Some(Kind::Item(ImportItem {
            offset,
            ticket: Some(ticket),
            comments,
        })),
    }
}

/// A ticket from the old desk, `zd-<n>`.
fn old_ticket(n: i64) -> Ticket {
    Ticket {
        external_id: format!("zd-{n}"),
        ..ticket(&format!("Zendesk ticket {n}"))
    }
}

fn comment(body: &str, author: &str, hours: i64) -> ImportComment {
    ImportComment {
        body: body.to_owned(),
        visibility: CommentVisibility::Public.into(),
        author_id: author.to_owned(),
        create_time: past(hours),
    }
}

/// Sends `messages` as one import stream and reads every answer; panics if the stream ends with an error.
async fn import(
    client: Tickets,
    messages: Vec<ImportTicketsRequest>,
) -> Vec<ImportTicketsResponse> {
    let answers = ok(client
        .clone()
        .import_tickets(tokio_stream::iter(messages))
        .await);
    read_all(answers).await
}

async fn read_all(mut answers: Streaming<ImportTicketsResponse>) -> Vec<ImportTicketsResponse> {
    let mut read = Vec::new();
    while let Some(answer) = next_item(&mut answers, "the import's answers")
        .await
        .unwrap_or_else(|status| {
            panic!(
                "the import ended with {status:?} after {} answers",
                read.len()
            )
        })
    {
        read.push(answer);
    }
    read
}

fn code_of(answer: &ImportTicketsResponse) -> Code {
    answer
        .status
        .as_ref()
        .map_or(Code::Ok, |status| Code::from_i32(status.code))
}

async fn imported_tickets_keep_their_times_authors_and_comments_and_notify_nobody(app: TestApp) {
    let pipeline = app.get_pipeline(0).await;
    let closed = pipeline
        .stages
        .iter()
        .find(|stage| stage.state() == TicketState::Closed)
        .expect("the default pipeline has a CLOSED stage");
    let solved = Ticket {
        stage_id: closed.id,
        create_time: past(0),
        update_time: past(30),
        close_time: past(29),
        requester_id: "customer-ann".to_owned(),
        ..old_ticket(1)
    };
    let open = Ticket {
        create_time: past(5),
        update_time: past(6),
        ..old_ticket(2)
    };
    let answers = import(
        app.tickets(),
        vec![
            options(OnConflict::Unspecified),
            item(
                10,
                solved,
                vec![
                    comment("My invoice is wrong.", "customer-ann", 1),
                    comment("Fixed, sorry!", "agent-bob", 28),
                ],
            ),
            item(11, open, vec![]),
        ],
    )
    .await;

    assert_eq!(
        answers
            .iter()
            .map(|a| (a.offset, code_of(a)))
            .collect::<Vec<_>>(),
        vec![(10, Code::Ok), (11, Code::Ok)]
    );
    let ticket = app.get_ticket(answers[0].ticket_id).await;
    assert_eq!(ticket.external_id, "zd-1");
    assert_eq!(
        (ticket.create_time, ticket.update_time, ticket.close_time),
        (past(0), past(30), past(29))
    );
    let open = app.get_ticket(answers[1].ticket_id).await;
    assert_eq!(
        (open.create_time, open.update_time, open.close_time),
        (past(5), past(6), None)
    );

    let comments = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: ticket.id,
            page_size: 10,
            page_token: String::new(),
        })
        .await)
    .comments;
    assert_eq!(
        comments
            .iter()
            .map(|c| (c.author_id.as_str(), c.create_time, c.body.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("customer-ann", past(1), "My invoice is wrong."),
            ("agent-bob", past(28), "Fixed, sorry!"),
        ]
    );
    for event in app.history(ticket.id).await {
        let effects = event.side_effects.expect("recorded side effects");
        assert_eq!(
            effects.notify(),
            Notify::None,
            "an import notifies nobody: {:?}",
            event.kind()
        );
        assert!(effects.skip_automations);
    }
    app.shutdown().await;
}

async fn each_item_is_answered_in_order_and_a_bad_one_does_not_sink_the_others(app: TestApp) {
    let answers = import(
        app.tickets(),
        vec![
            options(OnConflict::Skip),
            item(1, old_ticket(1), vec![]),
            item(
                2,
                Ticket {
                    external_id: String::new(),
                    ..old_ticket(2)
                },
                vec![],
            ),
            item(
                3,
                Ticket {
                    subject: String::new(),
                    ..old_ticket(3)
                },
                vec![],
            ),
            // Refused only by the store (no such pipeline): its chunk is rerun without it.
            item(
                4,
                Ticket {
                    pipeline_id: 9_999,
                    ..old_ticket(4)
                },
                vec![],
            ),
            item(
                5,
                Ticket {
                    update_time: past(1),
                    create_time: past(2),
                    ..old_ticket(5)
                },
                vec![],
            ),
            item(
                6,
                Ticket {
                    close_time: past(3),
                    ..old_ticket(6)
                },
                vec![],
            ),
            item(
                7,
                old_ticket(7),
                vec![ImportComment {
                    body: " ".to_owned(),
                    ..comment("", "", 0)
                }],
            ),
            item(8, old_ticket(8), vec![]),
        ],
    )
    .await;

    let offsets: Vec<i64> = answers.iter().map(|a| a.offset).collect();
    assert_eq!(
        offsets,
        (1..=8).collect::<Vec<_>>(),
        "one answer per item, in order"
    );
    let expected_fields = [
        (2, "ticket.external_id"),
        (3, "ticket.subject"),
        (4, "ticket.pipeline_id"),
        (5, "ticket.update_time"),
        (6, "ticket.close_time"),
        (7, "comments[0].body"),
    ];
    for (offset, field) in expected_fields {
        let answer = &answers[(offset - 1) as usize];
        assert_eq!(
            code_of(answer),
            Code::InvalidArgument,
            "item {offset}: {answer:?}"
        );
        let status = answer.status.as_ref().expect("a status");
        assert!(
            status.message.contains(field),
            "item {offset} names {field}: {status:?}"
        );
        assert_eq!(answer.ticket_id, 0);
    }
    for offset in [1, 8] {
        let answer = &answers[(offset - 1) as usize];
        assert_eq!(code_of(answer), Code::Ok, "{answer:?}");
        assert_eq!(
            app.get_ticket(answer.ticket_id).await.external_id,
            format!("zd-{offset}")
        );
    }
    assert_eq!(
        app.ticket_count().await,
        2,
        "only the good items were written"
    );
    app.shutdown().await;
}

async fn a_stream_cut_by_the_client_and_sent_again_whole_imports_every_item_once(app: TestApp) {
    const ITEMS: i64 = 1_200;
    let whole: Vec<ImportTicketsRequest> = std::iter::once(options(OnConflict::Skip))
        .chain((0..ITEMS).map(|n| item(n, old_ticket(n), vec![comment("history", "agent-bob", n)])))
        .collect();

    // The client sends everything, reads some answers, then goes away.
    let (sender, requests) = mpsc::channel(whole.len());
    for message in whole.clone() {
        sender
            .send(message)
            .await
            .expect("the channel holds the whole stream");
    }
    let mut answers = ok(app
        .tickets()
        .import_tickets(ReceiverStream::new(requests))
        .await);
    let mut acknowledged = BTreeMap::new();
    while acknowledged.len() < 600 {
        let answer = next_message(&mut answers, "answers before the cut").await;
        assert_eq!(code_of(&answer), Code::Ok, "{answer:?}");
        acknowledged.insert(answer.offset, answer.ticket_id);
    }
    drop(answers);
    drop(sender);

    // Sent again whole: what committed is recognised, the rest imported, nothing twice.
    let again = import(app.tickets(), whole).await;
    assert_eq!(again.len(), ITEMS as usize);
    for answer in &again {
        match acknowledged.get(&answer.offset) {
            Some(first_id) => {
                assert_eq!(code_of(answer), Code::AlreadyExists, "{answer:?}");
                assert_eq!(answer.ticket_id, *first_id, "the existing ticket's id");
            }
            None => assert!(
                matches!(code_of(answer), Code::Ok | Code::AlreadyExists),
                "{answer:?}"
            ),
        }
    }
    let ids: BTreeSet<i64> = again.iter().map(|answer| answer.ticket_id).collect();
    assert_eq!(ids.len(), ITEMS as usize, "one ticket per item");
    let tickets = app.list_all_tickets(Default::default()).await;
    assert_eq!(tickets.len(), ITEMS as usize);
    let external_ids: BTreeSet<String> = tickets.into_iter().map(|t| t.external_id).collect();
    assert_eq!(external_ids.len(), ITEMS as usize, "each external id once");
    let sample = *ids.iter().next().expect("tickets");
    let comments = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: sample,
            page_size: 10,
            page_token: String::new(),
        })
        .await)
    .comments;
    assert_eq!(comments.len(), 1, "a skipped item adds no comment");
    app.shutdown().await;
}

async fn on_conflict_update_overwrites_and_does_not_repeat_comments(app: TestApp) {
    let first = import(
        app.tickets(),
        vec![
            options(OnConflict::Skip),
            item(
                1,
                Ticket {
                    tags: strings(&["billing"]),
                    create_time: past(0),
                    ..old_ticket(1)
                },
                vec![comment("first", "ann", 1)],
            ),
        ],
    )
    .await;
    let id = first[0].ticket_id;

    let changed = Ticket {
        subject: "Zendesk ticket 1, renamed".to_owned(),
        update_time: past(48),
        ..old_ticket(1)
    };
    let second = import(
        app.tickets(),
        vec![
            options(OnConflict::Update),
            item(
                1,
                changed,
                vec![comment("first", "ann", 1), comment("second", "bob", 47)],
            ),
        ],
    )
    .await;
    assert_eq!(code_of(&second[0]), Code::Ok, "{:?}", second[0]);
    assert_eq!(second[0].ticket_id, id);
    let ticket = app.get_ticket(id).await;
    assert_eq!(ticket.subject, "Zendesk ticket 1, renamed");
    assert!(
        ticket.tags.is_empty(),
        "the item replaces the ticket's fields"
    );
    assert_eq!(ticket.update_time, past(48));
    let bodies: Vec<String> = ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id: id,
            page_size: 10,
            page_token: String::new(),
        })
        .await)
    .comments
    .into_iter()
    .map(|c| c.body)
    .collect();
    assert_eq!(bodies, vec!["first", "second"]);
    assert_eq!(app.ticket_count().await, 1);
    app.shutdown().await;
}

async fn the_first_message_must_carry_the_options_and_only_it(app: TestApp) {
    let refused = app
        .tickets()
        .import_tickets(tokio_stream::iter(vec![item(1, old_ticket(1), vec![])]))
        .await;
    let status = match refused {
        Err(status) => status,
        Ok(answers) => read_all_until_error(answers.into_inner()).await,
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_field_violation(&status, "options");

    let answers = ok(app
        .tickets()
        .import_tickets(tokio_stream::iter(vec![
            options(OnConflict::Skip),
            item(1, old_ticket(1), vec![]),
            options(OnConflict::Update),
            item(2, old_ticket(2), vec![]),
        ]))
        .await);
    let mut answers = answers;
    let first = next_message(&mut answers, "the item before the misplaced options").await;
    assert_eq!((first.offset, code_of(&first)), (1, Code::Ok));
    let status = read_all_until_error(answers).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_field_violation(&status, "options");
    assert_eq!(app.ticket_count().await, 1);
    app.shutdown().await;
}

async fn read_all_until_error(mut answers: Streaming<ImportTicketsResponse>) -> tonic::Status {
    loop {
        match next_item(&mut answers, "an import that must fail").await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the import ended OK"),
            Err(status) => return status,
        }
    }
}

async fn importers_need_the_import_scope_and_customers_may_not_import(app: TestApp) {
    let portal = app.create_portal(portal("Ann's portal")).await;
    let refused = [
        customer_token("customer-ann", "org-ann", portal.id),
        service_token("migrator", &["tickets:write"]),
    ];
    for token in refused {
        let result = app
            .tickets_as(&token)
            .import_tickets(tokio_stream::iter(vec![
                options(OnConflict::Skip),
                item(1, old_ticket(1), vec![]),
            ]))
            .await;
        assert_code(result, Code::PermissionDenied);
    }
    for (n, token) in [
        service_token("migrator", &["tickets:import"]),
        agent_token("agent-bob"),
    ]
    .into_iter()
    .enumerate()
    {
        let answers = import(
            app.tickets_as(&token),
            vec![
                options(OnConflict::Skip),
                item(1, old_ticket(n as i64), vec![]),
            ],
        )
        .await;
        assert_eq!(code_of(&answers[0]), Code::Ok, "{answers:?}");
        assert_eq!(
            app.get_ticket(answers[0].ticket_id).await.external_id,
            format!("zd-{n}")
        );
    }
    app.shutdown().await;
}

async fn side_effects_chosen_in_the_options_are_recorded(app: TestApp) {
    let answers = import(
        app.tickets(),
        vec![
            ImportTicketsRequest {
                kind: Some(Kind::Options(ImportOptions {
                    side_effects: Some(SideEffects {
                        notify: Notify::All.into(),
                        skip_automations: false,
                    }),
                    on_conflict: OnConflict::Skip.into(),
                })),
            },
            item(1, old_ticket(1), vec![]),
        ],
    )
    .await;
    for event in app.history(answers[0].ticket_id).await {
        let effects = event.side_effects.expect("recorded side effects");
        assert_eq!(effects.notify(), Notify::All);
        assert!(!effects.skip_automations);
    }
    let refused = app
        .tickets()
        .import_tickets(tokio_stream::iter(vec![ImportTicketsRequest {
            kind: Some(Kind::Options(ImportOptions {
                side_effects: Some(SideEffects {
                    notify: 7,
                    skip_automations: false,
                }),
                on_conflict: 9,
            })),
        }]))
        .await;
    let status = match refused {
        Err(status) => status,
        Ok(answers) => read_all_until_error(answers.into_inner()).await,
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    app.shutdown().await;
}
