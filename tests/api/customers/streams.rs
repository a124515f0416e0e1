//! WatchTickets for customers (item 5): replayed and live streams carry only visible events, redacted; filters
//! on hidden fields are refused.

use ticketd::proto::{
    CommentVisibility, Portal, Priority, Ticket, TicketEvent, TicketEventKind, WatchTicketsRequest,
};
use tonic::{Status, Streaming};

use super::*;

both_databases!(
    organization_portal_streams_carry_only_visible_redacted_events,
    follower_portal_streams_carry_followed_and_project_tickets_only,
    stream_filters_on_hidden_fields_are_refused,
    staff_streams_get_the_same_events_whole_and_customers_theirs_redacted,
);

/// Opens a WatchTickets stream as `client` (a customer), failing the test if it does not answer in time.
async fn watch_as(
    client: &mut Tickets,
    request: WatchTicketsRequest,
    what: &str,
) -> Result<Streaming<TicketEvent>, Status> {
    open_stream(client.watch_tickets(request), what).await
}

/// Reads a stream until the event that set `ticket_id`'s subject to `marker`; everything before it too.
async fn collect_until_marker(
    stream: &mut Streaming<TicketEvent>,
    ticket_id: i64,
    marker: &str,
    what: &str,
) -> Vec<TicketEvent> {
    let mut events = Vec::new();
    loop {
        let event = next_message(stream, what).await;
        let is_marker = event.ticket_id == ticket_id
            && event
                .changes
                .iter()
                .any(|change| change.field == "subject" && change.new_value == marker);
        events.push(event);
        if is_marker {
            return events;
        }
        assert!(events.len() < 10_000, "{what}: the marker never arrived");
    }
}

impl World {
    /// Panics unless `received` (a customer's stream up to its marker) is exactly the agent's events after
    /// `after` on `visible` tickets, as the rules let them through, and leaks nothing.
    #[track_caller]
    fn assert_stream(
        &self,
        portal: &Portal,
        received: &[TicketEvent],
        all_events: &[TicketEvent],
        visible: &[i64],
        after: i64,
        what: &str,
    ) {
        let last = received.last().map_or(after, |event| event.event_id);
        let expected: Vec<TicketEvent> = all_events
            .iter()
            .filter(|event| event.event_id > after && event.event_id <= last)
            .filter(|event| visible.contains(&event.ticket_id))
            .filter_map(|event| self.customer_event(portal, event))
            .collect();
        let stripped = without_tickets(received);
        assert_eq!(
            event_ids(&stripped),
            event_ids(&expected),
            "{what}: the stream must carry exactly the visible events"
        );
        assert_eq!(
            stripped, expected,
            "{what}: events must be redacted exactly"
        );
        for event in received {
            assert!(
                event.ticket.is_some(),
                "{what}: streamed events carry the ticket"
            );
            self.assert_event_leaks_nothing(portal, event, what);
        }
    }
}

/// Live changes made while customers watch: most of them must not reach anyone but the agent.
async fn live_changes_for_org_portals(app: &TestApp, world: &World) {
    let a = world.id("a-alice-q");
    let mut agent = agent(app);
    // Another organization's ticket.
    set_subject(app, world.id("b-member-i"), "Badge found").await;
    // An internal comment and an association on a visible ticket.
    comment(app, a, "internal, live", CommentVisibility::Internal).await;
    ok(app
        .associations_as(&agent_token(AGENT))
        .create_association(associate(a, "company", "77", 0))
        .await);
    // A change of hidden fields only, then a mixed one.
    ok(agent
        .update_ticket(update_ticket_req(
            Ticket {
                id: a,
                assignee_id: "agent-3".to_owned(),
                tags: strings(&["live"]),
                ..Default::default()
            },
            &["assignee_id", "tags"],
        ))
        .await);
    ok(agent
        .update_ticket(update_ticket_req(
            Ticket {
                id: world.id("a-secret-i"),
                priority: Priority::Low.into(),
                tags: strings(&["calm"]),
                properties: properties(&[("internal_score", "1")]),
                ..Default::default()
            },
            &["priority", "tags", "properties.internal_score"],
        ))
        .await);
    // A public comment, and a new ticket of org-a requested by a member.
    comment(app, a, "public, live", CommentVisibility::Public).await;
    ok(agent
        .create_ticket(create_ticket_req(Ticket {
            subject: "Created live".to_owned(),
            requester_id: "carol".to_owned(),
            organization_id: ORG_A.to_owned(),
            assignee_id: AGENT.to_owned(),
            ..Default::default()
        }))
        .await);
}

async fn organization_portal_streams_carry_only_visible_redacted_events(app: TestApp) {
    let world = setup(&app).await;
    let (a, b) = (world.id("a-alice-q"), world.id("b-bob-q"));
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let mut bob = world.tickets_as(&app, BOB, Which::P1);

    let replay = watch_all(world.before_setup);
    let mut alice_replay = watch_as(&mut alice, replay.clone(), "alice's replay")
        .await
        .expect("alice may watch");
    let mut bob_replay = watch_as(&mut bob, replay, "bob's replay")
        .await
        .expect("bob may watch");
    let opened_at = app
        .all_history()
        .await
        .last()
        .map_or(0, |event| event.event_id);
    let mut alice_live = watch_as(&mut alice, watch_all(0), "alice's live stream")
        .await
        .expect("alice may watch");

    live_changes_for_org_portals(&app, &world).await;
    set_subject(&app, a, "Marker for alice").await;
    set_subject(&app, b, "Marker for bob").await;

    let alice_events =
        collect_until_marker(&mut alice_replay, a, "Marker for alice", "alice's replay").await;
    let alice_live_events = collect_until_marker(
        &mut alice_live,
        a,
        "Marker for alice",
        "alice's live stream",
    )
    .await;
    let bob_events =
        collect_until_marker(&mut bob_replay, b, "Marker for bob", "bob's replay").await;

    let all_events = app.all_history().await;
    let tickets = agent_view(&app).await;
    let alice_sees = world.expected_ids(&tickets, ALICE, &world.p1);
    let bob_sees = world.expected_ids(&tickets, BOB, &world.p1);
    world.assert_stream(
        &world.p1,
        &alice_events,
        &all_events,
        &alice_sees,
        world.before_setup,
        "alice's replay",
    );
    world.assert_stream(
        &world.p1,
        &alice_live_events,
        &all_events,
        &alice_sees,
        opened_at,
        "alice's live stream",
    );
    world.assert_stream(
        &world.p1,
        &bob_events,
        &all_events,
        &bob_sees,
        world.before_setup,
        "bob's replay",
    );

    // Spelled out: the live part reached alice as the public comment, the priority of the mixed change, the
    // new org-a ticket and the marker; nothing of org-b reached her and nothing of org-a reached bob.
    assert_eq!(
        kinds(&alice_live_events),
        [
            TicketEventKind::Updated,
            TicketEventKind::CommentAdded,
            TicketEventKind::Created,
            TicketEventKind::Updated,
        ],
        "alice's live events"
    );
    assert_eq!(alice_live_events[0].ticket_id, world.id("a-secret-i"));
    assert_eq!(changed_fields(&alice_live_events[0]), ["priority"]);
    let org_of = |id: i64| tickets[&id].organization_id.as_str();
    assert!(alice_events.iter().all(|e| org_of(e.ticket_id) == ORG_A));
    assert!(bob_events.iter().all(|e| org_of(e.ticket_id) == ORG_B));
    assert!(
        bob_events
            .iter()
            .any(|e| e.ticket_id == world.id("b-member-i") && e.kind() == TicketEventKind::Updated),
        "bob sees the live change of his organization's ticket"
    );
}

async fn follower_portal_streams_carry_followed_and_project_tickets_only(app: TestApp) {
    let world = setup(&app).await;
    let (a, b) = (world.id("a-alice-q"), world.id("b-bob-q"));
    let mut alice = world.tickets_as(&app, ALICE, Which::P2);
    let mut bob = world.tickets_as(&app, BOB, Which::P2);
    let replay = watch_all(world.before_setup);
    let mut alice_stream = watch_as(&mut alice, replay.clone(), "alice's P2 replay")
        .await
        .expect("alice may watch");
    let mut bob_stream = watch_as(&mut bob, replay, "bob's P2 replay")
        .await
        .expect("bob may watch");

    // Live: a project ticket each, a followed ticket each, an incident alice requested (type not allowed), an
    // internal comment on a followed ticket, another organization's question.
    set_subject(&app, world.id("z-proj2-q"), "Migration moved").await;
    set_subject(&app, world.id("z-proj1-q"), "Rollout moved").await;
    comment(
        &app,
        world.id("z-bob-follows-q"),
        "Desk delivered",
        CommentVisibility::Public,
    )
    .await;
    comment(
        &app,
        world.id("z-alice-follows-q"),
        "internal about the printer",
        CommentVisibility::Internal,
    )
    .await;
    set_subject(&app, world.id("a-alice-i"), "VPN still down").await;
    set_subject(&app, world.id("b-secret-q"), "Contract dispute (legal)").await;
    set_subject(&app, world.id("z-proj1-i"), "Rollout failure (again)").await;
    set_subject(&app, a, "Marker for alice").await;
    set_subject(&app, b, "Marker for bob").await;

    let alice_events = collect_until_marker(
        &mut alice_stream,
        a,
        "Marker for alice",
        "alice's P2 replay",
    )
    .await;
    let bob_events =
        collect_until_marker(&mut bob_stream, b, "Marker for bob", "bob's P2 replay").await;

    let all_events = app.all_history().await;
    let tickets = agent_view(&app).await;
    let alice_sees = world.expected_ids(&tickets, ALICE, &world.p2);
    let bob_sees = world.expected_ids(&tickets, BOB, &world.p2);
    assert_eq!(
        alice_sees,
        world.ids_of(&["a-alice-q", "z-proj1-q", "z-alice-follows-q"])
    );
    assert_eq!(
        bob_sees,
        world.ids_of(&["b-bob-q", "z-proj2-q", "z-bob-follows-q"])
    );
    world.assert_stream(
        &world.p2,
        &alice_events,
        &all_events,
        &alice_sees,
        world.before_setup,
        "alice's P2 replay",
    );
    world.assert_stream(
        &world.p2,
        &bob_events,
        &all_events,
        &bob_sees,
        world.before_setup,
        "bob's P2 replay",
    );
    // Each visible ticket reached its customer; the others did not.
    let streamed = |events: &[TicketEvent]| -> Vec<i64> {
        sorted_ids(events.iter().map(|e| e.ticket_id).collect())
    };
    assert_eq!(streamed(&alice_events), alice_sees);
    assert_eq!(streamed(&bob_events), bob_sees);
}

async fn stream_filters_on_hidden_fields_are_refused(app: TestApp) {
    let world = setup(&app).await;
    let no_stage = app.create_portal(portal("nothing but the ticket")).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let refused = [
        (
            WatchTicketsRequest {
                assignee_id: AGENT.to_owned(),
                ..Default::default()
            },
            "assignee_id",
        ),
        (
            WatchTicketsRequest {
                organization_id: ORG_A.to_owned(),
                ..Default::default()
            },
            "organization_id",
        ),
        (
            WatchTicketsRequest {
                pipeline_id_set: true,
                ..Default::default()
            },
            "pipeline_id",
        ),
    ];
    for (request, field) in refused {
        let result = alice.watch_tickets(request).await;
        assert_field_denied(result, field);
    }
    let mut hidden_stage = app.tickets_as(&customer_token(ALICE.sub, ALICE.org, no_stage.id));
    assert_field_denied(
        hidden_stage
            .watch_tickets(WatchTicketsRequest {
                stage_ids: vec![world.stages[0].id],
                ..Default::default()
            })
            .await,
        "stage_ids",
    );

    // A filter on a field P1 shows is fine, and works.
    let a = world.id("a-alice-q");
    let mut by_stage = watch_as(
        &mut alice,
        WatchTicketsRequest {
            stage_ids: vec![world.stages[1].id],
            ..Default::default()
        },
        "alice's stage watch",
    )
    .await
    .expect("stage_id is visible through P1");
    set_subject(&app, world.id("a-amy-q"), "not in the watched stage").await;
    set_subject(&app, a, "Marker in stage 2").await;
    let events =
        collect_until_marker(&mut by_stage, a, "Marker in stage 2", "alice's stage watch").await;
    assert_eq!(
        events.iter().map(|e| e.ticket_id).collect::<Vec<_>>(),
        [a],
        "only the ticket in the watched stage: a-amy-q's change is filtered out"
    );
    world.assert_event_leaks_nothing(&world.p1, &events[0], "alice's stage watch");
}

/// Staff streams share one encoding of each event (src/events/shared.rs): two agents watching side by side
/// with a customer must each get every event whole, the same message, while the customer on the same events
/// gets exactly its redaction; and the route that serves them still checks requests as every method does.
async fn staff_streams_get_the_same_events_whole_and_customers_theirs_redacted(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut first_agent = agent(&app);
    let mut second_agent = agent(&app);
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let opened_at = app
        .all_history()
        .await
        .last()
        .map_or(0, |event| event.event_id);
    let mut first = watch_as(&mut first_agent, watch_all(0), "first agent")
        .await
        .expect("agents may watch");
    let mut second = watch_as(&mut second_agent, watch_all(0), "second agent")
        .await
        .expect("agents may watch");
    let mut customer = watch_as(&mut alice, watch_all(0), "alice")
        .await
        .expect("alice may watch");

    live_changes_for_org_portals(&app, &world).await;
    set_subject(&app, a, "Marker for everyone").await;

    let first_events =
        collect_until_marker(&mut first, a, "Marker for everyone", "first agent").await;
    let second_events =
        collect_until_marker(&mut second, a, "Marker for everyone", "second agent").await;
    let alice_events = collect_until_marker(&mut customer, a, "Marker for everyone", "alice").await;

    assert_eq!(
        first_events, second_events,
        "every agent gets the same messages"
    );
    let all_events = app.all_history().await;
    let last = first_events
        .last()
        .map_or(opened_at, |event| event.event_id);
    let history: Vec<TicketEvent> = all_events
        .iter()
        .filter(|event| event.event_id > opened_at && event.event_id <= last)
        .cloned()
        .collect();
    assert_eq!(
        without_tickets(&first_events),
        history,
        "agents get every event, as history records it"
    );
    let tickets = agent_view(&app).await;
    for event in &first_events {
        assert_eq!(
            event.ticket.as_ref().map(|ticket| ticket.id),
            Some(event.ticket_id),
            "agents' events carry the ticket, unredacted"
        );
    }
    assert!(
        first_events
            .iter()
            .filter_map(|event| event.ticket.as_ref())
            .any(|ticket| !ticket.assignee_id.is_empty()),
        "agents see the fields customers do not"
    );
    world.assert_stream(
        &world.p1,
        &alice_events,
        &all_events,
        &world.expected_ids(&tickets, ALICE, &world.p1),
        opened_at,
        "alice beside the agents",
    );
    assert!(
        alice_events.len() < first_events.len(),
        "alice gets fewer events than the agents ({} of {})",
        alice_events.len(),
        first_events.len()
    );

    // A request the codec refuses is the client's fault on this route as on the generated ones.
    let refused = first_agent
        .watch_tickets(WatchTicketsRequest {
            assignee_id: "agent\0".to_owned(),
            ..Default::default()
        })
        .await;
    assert_invalid(refused, "assignee_id");
}
