//! EscalationService as a chat tool uses it (iAdvize → the desk): one ticket per conversation however often
//! and however concurrently it is handed over, assigned by the handling agent's e-mail, with the transcript as a
//! private note no customer sees, and filed chats created solved without notifying anybody.

use std::collections::BTreeMap;

use prost_types::Timestamp;
use ticketd::proto::{
    Agent, Assignment, AuthorKind, CommentVisibility, ConversationMessage, CreateAgentRequest,
    DeactivateAgentRequest, EscalateConversationRequest, EscalateConversationResponse,
    EscalationMode, GetConversationTicketRequest, GetTicketRequest, ListCommentsRequest,
    ListTicketHistoryRequest, Notify, PropertyType, Requester, Ticket, TicketEventKind,
    TicketState, escalation_service_client::EscalationServiceClient,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    an_escalated_chat_becomes_one_ticket_assigned_by_email_with_the_transcript_as_a_private_note,
    a_repeat_returns_the_same_ticket_and_notes_only_new_messages,
    the_assignment_says_why_nobody_was_assigned_and_an_explicit_assignee_wins,
    an_archived_chat_is_filed_solved_silently_and_its_customer_sees_no_transcript,
    archiving_into_a_pipeline_without_a_closed_stage_is_refused_naming_it,
    every_missing_required_property_is_named_and_nothing_is_written,
    a_chat_coming_back_after_its_ticket_was_solved_gets_a_linked_follow_up,
    a_retried_escalation_with_its_request_id_replays_the_answer,
    bad_input_is_refused_naming_the_field_and_writes_nothing,
    staff_and_scoped_services_escalate_and_customers_may_not,
);

postgres_only!(
    twenty_concurrent_escalations_through_two_servers_make_one_ticket_noting_each_message_once
);

type Escalations = EscalationServiceClient<Authed>;

fn escalations(app: &TestApp) -> Escalations {
    escalations_as(app, &admin_token(TEST_ADMIN))
}

fn escalations_as(app: &TestApp, token: &str) -> Escalations {
    EscalationServiceClient::with_interceptor(app.channel(), Bearer::new(token))
}

/// 2026-11-28 14:00 UTC plus `minutes`.
fn at(minutes: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_795_874_400 + minutes * 60,
        nanos: 0,
    })
}

fn message(
    id: &str,
    kind: AuthorKind,
    author: &str,
    text: &str,
    minute: i64,
) -> ConversationMessage {
    ConversationMessage {
        message_id: id.to_owned(),
        author_kind: kind.into(),
        author_name: author.to_owned(),
        text: text.to_owned(),
        sent_time: at(minute),
    }
}

/// The opening of the chat the tests hand over.
fn first_messages() -> Vec<ConversationMessage> {
    vec![
        message(
            "m1",
            AuthorKind::Visitor,
            "Jane Doe",
            "My parcel never arrived.",
            2,
        ),
        message(
            "m2",
            AuthorKind::Agent,
            "Sam",
            "Sorry to hear that, let me check.",
            3,
        ),
    ]
}

fn escalation(
    conversation_id: &str,
    transcript: Vec<ConversationMessage>,
) -> EscalateConversationRequest {
    EscalateConversationRequest {
        source: "iadvize".to_owned(),
        conversation_id: conversation_id.to_owned(),
        mode: EscalationMode::Open.into(),
        ticket: Some(ticket("Parcel never arrived")),
        requester: Some(Requester {
            id: String::new(),
            email: "Jane.Doe@Example.com".to_owned(),
            name: "Jane Doe".to_owned(),
        }),
        agent_email: String::new(),
        transcript,
        ..Default::default()
    }
}

async fn escalate(
    app: &TestApp,
    request: EscalateConversationRequest,
) -> EscalateConversationResponse {
    ok(escalations(app).escalate_conversation(request).await)
}

async fn create_agent(app: &TestApp, id: &str, email: &str) -> Agent {
    ok(app
        .agents()
        .create_agent(CreateAgentRequest {
            agent: Some(Agent {
                id: id.to_owned(),
                email: email.to_owned(),
                display_name: id.to_owned(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await)
}

async fn comments(app: &TestApp, ticket_id: i64) -> Vec<ticketd::proto::Comment> {
    ok(app
        .tickets()
        .list_comments(ListCommentsRequest {
            ticket_id,
            page_size: 500,
            page_token: String::new(),
        })
        .await)
    .comments
}

async fn links(app: &TestApp, ticket_id: i64) -> Vec<(String, String, String)> {
    let conversations = app.list_all_associations(ticket_id, "conversation").await;
    let tickets = app.list_all_associations(ticket_id, "ticket").await;
    conversations
        .into_iter()
        .chain(tickets)
        .map(|link| {
            let to = link.to.unwrap_or_default();
            (to.object_type, to.object_id, link.label)
        })
        .collect()
}

fn response_ticket(response: &EscalateConversationResponse) -> &Ticket {
    response
        .ticket
        .as_ref()
        .expect("the response carries the ticket")
}

async fn an_escalated_chat_becomes_one_ticket_assigned_by_email_with_the_transcript_as_a_private_note(
    app: TestApp,
) {
    create_agent(&app, "agent-sam", "Sam.Agent@Example.com").await;
    let mut request = escalation("conv-1", first_messages());
    request.agent_email = "sam.agent@EXAMPLE.com".to_owned();

    let answer = escalate(&app, request).await;

    assert!(answer.created);
    assert_eq!(answer.assignment(), Assignment::MatchedAgent);
    assert_eq!(answer.messages_added, 2);
    let ticket = response_ticket(&answer);
    assert_eq!(
        ticket.assignee_id, "agent-sam",
        "matched ignoring letter case"
    );
    assert_eq!(ticket.requester_id, "email:jane.doe@example.com");
    let pipeline = app.get_pipeline(0).await;
    let first_open = pipeline
        .stages
        .iter()
        .find(|stage| stage.state() == TicketState::Open)
        .expect("the default pipeline has an OPEN stage");
    assert_eq!(ticket.stage_id, first_open.id);
    assert_eq!(ticket.close_time, None);

    let notes = comments(&app, ticket.id).await;
    assert_eq!(notes.len(), 1, "one note per call that adds messages");
    assert_eq!(notes[0].visibility(), CommentVisibility::Internal);
    assert_eq!(notes[0].author_id, TEST_ADMIN, "authored by the caller");
    assert!(
        notes[0]
            .body
            .contains("[2026-11-28 14:02 UTC] Visitor Jane Doe: My parcel never arrived."),
        "{}",
        notes[0].body
    );
    assert!(
        notes[0]
            .body
            .contains("[2026-11-28 14:03 UTC] Agent Sam: Sorry to hear that, let me check."),
        "{}",
        notes[0].body
    );
    assert!(
        links(&app, ticket.id).await.contains(&(
            "conversation".to_owned(),
            "iadvize:conv-1".to_owned(),
            String::new()
        )),
        "linked to its conversation"
    );
    let found = ok(escalations(&app)
        .get_conversation_ticket(GetConversationTicketRequest {
            source: "iadvize".to_owned(),
            conversation_id: "conv-1".to_owned(),
        })
        .await);
    assert_eq!(found.id, ticket.id);
    let unknown = escalations(&app)
        .get_conversation_ticket(GetConversationTicketRequest {
            source: "iadvize".to_owned(),
            conversation_id: "never-escalated".to_owned(),
        })
        .await;
    assert_code(unknown, Code::NotFound);
    app.shutdown().await;
}

async fn a_repeat_returns_the_same_ticket_and_notes_only_new_messages(app: TestApp) {
    let first = escalate(&app, escalation("conv-2", first_messages())).await;
    let id = response_ticket(&first).id;

    // The tool resends the whole chat, now longer; its newest messages carry no id.
    let mut longer = first_messages();
    longer.push(message(
        "",
        AuthorKind::Visitor,
        "Jane Doe",
        "Order 4417.",
        4,
    ));
    longer.push(message("", AuthorKind::Bot, "", "Rate this chat?", 5));
    let repeat = escalate(&app, escalation("conv-2", longer.clone())).await;
    assert!(!repeat.created);
    assert_eq!(repeat.assignment(), Assignment::Unchanged);
    assert_eq!(response_ticket(&repeat).id, id);
    assert_eq!(repeat.messages_added, 2);

    let again = escalate(&app, escalation("conv-2", longer)).await;
    assert_eq!(
        again.messages_added, 0,
        "messages without ids are known by time, author and text"
    );
    assert_eq!(response_ticket(&again).id, id);

    let notes = comments(&app, id).await;
    assert_eq!(notes.len(), 2, "a call adding nothing adds no note");
    assert!(notes[1].body.contains("Visitor Jane Doe: Order 4417."));
    assert!(notes[1].body.contains("] Bot: Rate this chat?"));
    assert!(!notes[1].body.contains("My parcel never arrived."));
    assert_eq!(app.ticket_count().await, 1);
    app.shutdown().await;
}

async fn the_assignment_says_why_nobody_was_assigned_and_an_explicit_assignee_wins(app: TestApp) {
    let gone = create_agent(&app, "agent-gone", "gone@example.com").await;
    ok(app
        .agents()
        .deactivate_agent(DeactivateAgentRequest {
            id: gone.id.clone(),
            ..Default::default()
        })
        .await);
    create_agent(&app, "agent-here", "here@example.com").await;

    let mut inactive = escalation("conv-inactive", first_messages());
    inactive.agent_email = "GONE@example.com".to_owned();
    let answer = escalate(&app, inactive).await;
    assert_eq!(answer.assignment(), Assignment::AgentInactive);
    assert_eq!(response_ticket(&answer).assignee_id, "");

    let mut unknown = escalation("conv-unknown", first_messages());
    unknown.agent_email = "nobody@example.com".to_owned();
    let answer = escalate(&app, unknown).await;
    assert_eq!(answer.assignment(), Assignment::NoAgentWithEmail);
    assert_eq!(response_ticket(&answer).assignee_id, "");

    let mut explicit = escalation("conv-explicit", first_messages());
    explicit.agent_email = "here@example.com".to_owned();
    explicit.ticket.as_mut().expect("a ticket").assignee_id = "someone-elsewhere".to_owned();
    let answer = escalate(&app, explicit).await;
    assert_eq!(answer.assignment(), Assignment::Explicit);
    assert_eq!(response_ticket(&answer).assignee_id, "someone-elsewhere");

    let mut by_id = escalation("conv-requester", first_messages());
    by_id.requester.as_mut().expect("a requester").id = "crm-42".to_owned();
    let answer = escalate(&app, by_id).await;
    assert_eq!(
        response_ticket(&answer).requester_id,
        "crm-42",
        "an id beats the address"
    );
    app.shutdown().await;
}

async fn an_archived_chat_is_filed_solved_silently_and_its_customer_sees_no_transcript(
    app: TestApp,
) {
    let portal = app.create_portal(portal("Jane's portal")).await;
    let customer = customer_token("cust-jane", "org-jane", portal.id);
    let mut customer_stream = open_stream(
        app.tickets_as(&customer).watch_tickets(watch_all(0)),
        "the customer's WatchTickets",
    )
    .await
    .expect("a customer may watch its tickets");

    let mut filed = escalation("conv-archived", first_messages());
    filed.mode = EscalationMode::Archive.into();
    filed.requester.as_mut().expect("a requester").id = "cust-jane".to_owned();
    let answer = escalate(&app, filed).await;

    let ticket = response_ticket(&answer).clone();
    assert!(answer.created);
    let pipeline = app.get_pipeline(ticket.pipeline_id).await;
    let stage = pipeline
        .stages
        .iter()
        .find(|stage| stage.id == ticket.stage_id)
        .expect("the ticket's stage is in its pipeline");
    assert_eq!(
        stage.state(),
        TicketState::Closed,
        "filed in a CLOSED stage"
    );
    assert_eq!(
        ticket.close_time,
        at(3),
        "closed when the chat's last message was sent"
    );

    let events = app.history(ticket.id).await;
    assert!(!events.is_empty());
    for event in &events {
        let effects = event
            .side_effects
            .as_ref()
            .expect("every event records its side effects");
        assert_eq!(
            effects.notify(),
            Notify::None,
            "{:?} notifies nobody",
            event.kind()
        );
        assert!(effects.skip_automations, "{:?} runs no rules", event.kind());
    }
    assert!(
        events
            .iter()
            .any(|event| event.kind() == TicketEventKind::CommentAdded)
    );

    // The requester's portal shows the ticket, but never the private note: not in comments, history or streams.
    let seen = ok(app
        .tickets_as(&customer)
        .get_ticket(GetTicketRequest { id: ticket.id })
        .await);
    assert_eq!(seen.id, ticket.id);
    let customer_comments = ok(app
        .tickets_as(&customer)
        .list_comments(ListCommentsRequest {
            ticket_id: ticket.id,
            page_size: 100,
            page_token: String::new(),
        })
        .await);
    assert!(customer_comments.comments.is_empty());
    let customer_history = every_event(
        &app.tickets_as(&customer),
        ListTicketHistoryRequest {
            ticket_id: ticket.id,
            ..Default::default()
        },
    )
    .await;
    assert!(
        customer_history
            .iter()
            .all(|event| event.kind() != TicketEventKind::CommentAdded && event.comment.is_none()),
        "{customer_history:?}"
    );
    let marker = app
        .create_ticket(Ticket {
            requester_id: "cust-jane".to_owned(),
            ..crate::support::ticket("a later ticket of Jane's")
        })
        .await;
    let mut streamed = Vec::new();
    loop {
        let event = next_message(&mut customer_stream, "the customer's stream").await;
        let done = event.ticket_id == marker.id;
        streamed.push(event);
        if done {
            break;
        }
    }
    assert!(
        streamed
            .iter()
            .all(|event| event.kind() != TicketEventKind::CommentAdded && event.comment.is_none()),
        "{streamed:?}"
    );
    assert!(
        streamed.iter().any(|event| event.ticket_id == ticket.id),
        "the ticket itself is shown"
    );
    app.shutdown().await;
}

async fn archiving_into_a_pipeline_without_a_closed_stage_is_refused_naming_it(app: TestApp) {
    let open_only = app
        .create_pipeline(pipeline(
            "Triage",
            vec![
                stage("New", TicketState::Open, 0),
                stage("Working", TicketState::Open, 1),
            ],
        ))
        .await;
    let mut filed = escalation("conv-triage", first_messages());
    filed.mode = EscalationMode::Archive.into();
    filed.ticket.as_mut().expect("a ticket").pipeline_id = open_only.id;

    let status = assert_code(
        escalations(&app).escalate_conversation(filed).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains(&open_only.id.to_string()) && status.message().contains("Triage"),
        "{status:?}"
    );
    assert_eq!(app.ticket_count().await, 0);
    app.shutdown().await;
}

async fn every_missing_required_property_is_named_and_nothing_is_written(app: TestApp) {
    for name in ["order_number", "shop"] {
        app.create_property(ticketd::proto::PropertyDefinition {
            required: true,
            ..property_def(name, PropertyType::String)
        })
        .await;
    }
    app.create_property(ticketd::proto::PropertyDefinition {
        required: true,
        default_value: "web".to_owned(),
        ..property_def("channel", PropertyType::String)
    })
    .await;

    let status = assert_code(
        escalations(&app)
            .escalate_conversation(escalation("conv-props", first_messages()))
            .await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("order_number") && status.message().contains("shop"),
        "every missing name at once: {status:?}"
    );
    assert!(
        !status.message().contains("channel"),
        "a default fills it: {status:?}"
    );
    assert_eq!(app.ticket_count().await, 0, "nothing is written");
    assert_code(
        escalations(&app)
            .get_conversation_ticket(GetConversationTicketRequest {
                source: "iadvize".to_owned(),
                conversation_id: "conv-props".to_owned(),
            })
            .await,
        Code::NotFound,
    );

    let mut complete = escalation("conv-props", first_messages());
    complete.ticket.as_mut().expect("a ticket").properties =
        properties(&[("order_number", "4417"), ("shop", "lyon")]);
    let answer = escalate(&app, complete).await;
    let expected: BTreeMap<String, String> = properties(&[
        ("channel", "web"),
        ("order_number", "4417"),
        ("shop", "lyon"),
    ]);
    assert_eq!(response_ticket(&answer).properties, expected);
    app.shutdown().await;
}

async fn a_chat_coming_back_after_its_ticket_was_solved_gets_a_linked_follow_up(app: TestApp) {
    let first = escalate(&app, escalation("conv-back", first_messages())).await;
    let solved = response_ticket(&first).clone();
    let pipeline = app.get_pipeline(solved.pipeline_id).await;
    let closed = pipeline
        .stages
        .iter()
        .find(|stage| stage.state() == TicketState::Closed)
        .expect("the default pipeline has a CLOSED stage");
    app.update_ticket(stage_change(solved.id, closed.id), &["stage_id"])
        .await;

    // The same call again is a repeat, not a comeback: nothing new, no follow-up.
    let repeat = escalate(&app, escalation("conv-back", first_messages())).await;
    assert!(!repeat.created);
    assert_eq!(response_ticket(&repeat).id, solved.id);

    let mut comeback = first_messages();
    comeback.push(message(
        "m3",
        AuthorKind::Visitor,
        "Jane Doe",
        "It is still not here.",
        60 * 24,
    ));
    let answer = escalate(&app, escalation("conv-back", comeback.clone())).await;
    assert!(answer.created);
    let follow_up = response_ticket(&answer).clone();
    assert_ne!(follow_up.id, solved.id);
    assert_eq!(follow_up.close_time, None, "the follow-up is open");
    assert_eq!(
        app.get_ticket(solved.id).await.stage_id,
        closed.id,
        "the solved ticket stays solved"
    );
    assert_eq!(answer.messages_added, 1);
    assert!(
        comments(&app, follow_up.id).await[0]
            .body
            .contains("It is still not here.")
    );
    assert!(
        links(&app, follow_up.id).await.contains(&(
            "ticket".to_owned(),
            solved.id.to_string(),
            "follow_up_of".to_owned()
        )),
        "{:?}",
        links(&app, follow_up.id).await
    );
    assert!(
        links(&app, solved.id).await.contains(&(
            "ticket".to_owned(),
            follow_up.id.to_string(),
            "has_follow_up".to_owned()
        )),
        "{:?}",
        links(&app, solved.id).await
    );
    let latest = ok(escalations(&app)
        .get_conversation_ticket(GetConversationTicketRequest {
            source: "iadvize".to_owned(),
            conversation_id: "conv-back".to_owned(),
        })
        .await);
    assert_eq!(latest.id, follow_up.id);

    let again = escalate(&app, escalation("conv-back", comeback)).await;
    assert!(!again.created);
    assert_eq!(response_ticket(&again).id, follow_up.id);
    app.shutdown().await;
}

async fn a_retried_escalation_with_its_request_id_replays_the_answer(app: TestApp) {
    let request = EscalateConversationRequest {
        request_id: request_id(),
        ..escalation("conv-retry", first_messages())
    };
    let first = escalate(&app, request.clone()).await;
    let retried = escalate(&app, request).await;
    assert!(retried.created, "the first answer, replayed");
    assert_eq!(response_ticket(&retried).id, response_ticket(&first).id);
    assert_eq!(comments(&app, response_ticket(&first).id).await.len(), 1);
    app.shutdown().await;
}

async fn bad_input_is_refused_naming_the_field_and_writes_nothing(app: TestApp) {
    let client = escalations(&app);
    let cases: Vec<(&str, EscalateConversationRequest)> = vec![
        ("conversation_id", escalation("", first_messages())),
        (
            "source",
            EscalateConversationRequest {
                source: "iAdvize".to_owned(),
                ..escalation("conv-bad", first_messages())
            },
        ),
        (
            "conversation_id",
            escalation(&"x".repeat(256), first_messages()),
        ),
        (
            "mode",
            EscalateConversationRequest {
                mode: 9,
                ..escalation("conv-bad", first_messages())
            },
        ),
        (
            "mode",
            EscalateConversationRequest {
                mode: 0,
                ..escalation("conv-bad", first_messages())
            },
        ),
        (
            "transcript[0].text",
            escalation(
                "conv-bad",
                vec![message(
                    "m1",
                    AuthorKind::Visitor,
                    "Jane",
                    &"a".repeat(1024 * 1024),
                    1,
                )],
            ),
        ),
        ("transcript[1].author_kind", {
            let mut transcript = first_messages();
            transcript[1].author_kind = 9;
            escalation("conv-bad", transcript)
        }),
        ("transcript[0].sent_time", {
            let mut transcript = first_messages();
            transcript[0].sent_time = None;
            escalation("conv-bad", transcript)
        }),
        (
            "agent_email",
            EscalateConversationRequest {
                agent_email: "sam at example".to_owned(),
                ..escalation("conv-bad", first_messages())
            },
        ),
        ("requester.email", {
            let mut request = escalation("conv-bad", first_messages());
            request.requester.as_mut().expect("a requester").email = "jane@".to_owned();
            request
        }),
        (
            "ticket.subject",
            EscalateConversationRequest {
                ticket: Some(ticket("")),
                ..escalation("conv-bad", first_messages())
            },
        ),
    ];
    for (field, request) in cases {
        assert_invalid(client.clone().escalate_conversation(request).await, field);
    }
    assert_eq!(app.ticket_count().await, 0);
    app.shutdown().await;
}

async fn staff_and_scoped_services_escalate_and_customers_may_not(app: TestApp) {
    let portal = app.create_portal(portal("Jane's portal")).await;
    let customer = customer_token("cust-jane", "org-jane", portal.id);
    assert_code(
        escalations_as(&app, &customer)
            .escalate_conversation(escalation("conv-auth", first_messages()))
            .await,
        Code::PermissionDenied,
    );
    let unscoped = service_token("chat-tool", &["tickets:read"]);
    assert_code(
        escalations_as(&app, &unscoped)
            .escalate_conversation(escalation("conv-auth", first_messages()))
            .await,
        Code::PermissionDenied,
    );
    let chat_tool = service_token("chat-tool", &["tickets:write"]);
    let answer = ok(escalations_as(&app, &chat_tool)
        .escalate_conversation(escalation("conv-auth", first_messages()))
        .await);
    assert_eq!(
        comments(&app, response_ticket(&answer).id).await[0].author_id,
        "chat-tool"
    );
    let agent = ok(escalations_as(&app, &agent_token("agent-sam"))
        .escalate_conversation(escalation("conv-auth", first_messages()))
        .await);
    assert_eq!(response_ticket(&agent).id, response_ticket(&answer).id);
    app.shutdown().await;
}

async fn twenty_concurrent_escalations_through_two_servers_make_one_ticket_noting_each_message_once(
    app: TestApp,
) {
    let other = app.another_server().await;
    // Each call sends the chat as its tool saw it at some moment: a prefix of the whole transcript.
    let whole: Vec<ConversationMessage> = (0..20)
        .map(|n| {
            message(
                &format!("m{n}"),
                AuthorKind::Visitor,
                "Jane",
                &format!("message {n}"),
                n,
            )
        })
        .collect();
    let calls = (0..20).map(|n| {
        let server = if n % 2 == 0 { &app } else { &other };
        let client = escalations(server);
        let request = escalation("conv-race", whole[..=n].to_vec());
        async move { client.clone().escalate_conversation(request).await }
    });
    let answers: Vec<EscalateConversationResponse> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(ok)
        .collect();

    let ids: std::collections::BTreeSet<i64> = answers
        .iter()
        .map(|answer| response_ticket(answer).id)
        .collect();
    assert_eq!(ids.len(), 1, "one ticket: {ids:?}");
    assert_eq!(answers.iter().filter(|answer| answer.created).count(), 1);
    assert_eq!(app.ticket_count().await, 1);
    let added: i32 = answers.iter().map(|answer| answer.messages_added).sum();
    assert_eq!(added, 20, "each message noted by exactly one call");
    let id = *ids.first().expect("one ticket");
    let notes: String = comments(&app, id)
        .await
        .into_iter()
        .map(|note| note.body)
        .collect::<Vec<_>>()
        .join("\n");
    for n in 0..20 {
        assert_eq!(
            notes.matches(&format!(": message {n}\n")).count()
                + usize::from(notes.ends_with(&format!(": message {n}"))),
            1,
            "message {n} once in:\n{notes}"
        );
    }
    other.shutdown().await;
    app.shutdown().await;
}
