//! 4. History: customers' history leaves out internal comments, association events and changes of hidden
//! fields.

use std::collections::BTreeSet;

use ticketd::proto::{CommentVisibility, ListTicketHistoryRequest, TicketEvent, TicketEventKind};

use super::*;

both_databases!(customer_history_leaves_out_internal_comments_associations_and_hidden_changes,);

async fn customer_history_leaves_out_internal_comments_associations_and_hidden_changes(
    app: TestApp,
) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let agent_history = app.history(a).await;
    // The fixture has everything that must be left out.
    let kinds: Vec<TicketEventKind> = agent_history.iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&TicketEventKind::AssociationAdded));
    assert!(kinds.contains(&TicketEventKind::AssociationRemoved));
    assert!(agent_history.iter().any(|e| {
        e.comment
            .as_ref()
            .is_some_and(|c| c.visibility() == CommentVisibility::Internal)
    }));
    let changed = |field: &str| {
        agent_history
            .iter()
            .any(|e| e.changes.iter().any(|c| c.field == field))
    };
    for field in [
        "assignee_id",
        "tags",
        "properties.internal_score",
        "priority",
        "stage_id",
        "properties.region",
    ] {
        assert!(changed(field), "the agent's history changes {field}");
    }

    for (customer, which) in [(ALICE, Which::P1), (AMY, Which::P1), (ALICE, Which::P2)] {
        let what = format!("{} through {which:?}", customer.sub);
        let portal = world.portal(which);
        let expected: Vec<TicketEvent> = agent_history
            .iter()
            .filter_map(|event| world.customer_event(portal, event))
            .collect();
        let mut client = world.tickets_as(&app, customer, which);
        for page_size in [1, 3, 100] {
            let history = history_as(&mut client, a, page_size).await;
            assert_eq!(
                history, expected,
                "{what}, page size {page_size}: the history as the rules let it through"
            );
            for event in &history {
                world.assert_event_leaks_nothing(portal, event, &what);
            }
        }
    }

    // Spelled out for P1: CREATED, the public comment, the priority (not the assignee) of the mixed change,
    // the stage change and the region change; P2 also loses the priority and region changes.
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let p1_history = history_as(&mut alice, a, 100).await;
    assert_eq!(
        p1_history.iter().map(|e| e.kind()).collect::<Vec<_>>(),
        [
            TicketEventKind::Created,
            TicketEventKind::CommentAdded,
            TicketEventKind::Updated,
            TicketEventKind::StageChanged,
            TicketEventKind::Updated,
        ]
    );
    assert_eq!(
        p1_history[2]
            .changes
            .iter()
            .map(|c| c.field.as_str())
            .collect::<Vec<_>>(),
        ["priority"]
    );
    let created_fields: BTreeSet<&str> = p1_history[0]
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(
        created_fields,
        BTreeSet::from([
            "subject",
            "content",
            "stage_id",
            "priority",
            "properties.region"
        ])
    );
    let mut alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    let p2_kinds: Vec<TicketEventKind> = history_as(&mut alice_p2, a, 100)
        .await
        .iter()
        .map(|e| e.kind())
        .collect();
    assert_eq!(
        p2_kinds,
        [
            TicketEventKind::Created,
            TicketEventKind::CommentAdded,
            TicketEventKind::StageChanged,
        ]
    );

    // A CREATED event of a ticket full of hidden values.
    let secret = history_as(&mut alice, world.id("a-secret-i"), 100).await;
    assert_eq!(secret.len(), 1, "the internal comment is left out");
    let fields: BTreeSet<&str> = secret[0].changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "subject",
            "content",
            "stage_id",
            "priority",
            "properties.region"
        ])
    );

    // Tickets the customer does not see.
    for (customer, which, key) in [
        (BOB, Which::P1, "a-alice-q"),
        (ALICE, Which::P2, "a-alice-i"),
        (AMY, Which::P2, "z-alice-follows-q"),
    ] {
        let id = world.id(key);
        assert_not_found(
            world
                .tickets_as(&app, customer, which)
                .list_ticket_history(ListTicketHistoryRequest {
                    ticket_id: id,
                    ..Default::default()
                })
                .await,
            "ticket",
            id,
        );
    }
}
