//! Customer history (item 4): it leaves out internal comments, association events and changes of hidden
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
    let agent_kinds = kinds(&agent_history);
    assert!(agent_kinds.contains(&TicketEventKind::AssociationAdded));
    assert!(agent_kinds.contains(&TicketEventKind::AssociationRemoved));
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
        let client = world.tickets_as(&app, customer, which);
        for page_size in [1, 3, 100] {
            let history = history_as(&client, a, page_size).await;
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
    let alice = world.tickets_as(&app, ALICE, Which::P1);
    let p1_history = history_as(&alice, a, 100).await;
    assert_eq!(
        kinds(&p1_history),
        [
            TicketEventKind::Created,
            TicketEventKind::CommentAdded,
            TicketEventKind::Updated,
            TicketEventKind::StageChanged,
            TicketEventKind::Updated,
        ]
    );
    assert_eq!(changed_fields(&p1_history[2]), ["priority"]);
    // A CREATED event shows P1's customers the fields always visible and the ones P1 lists, hidden values or not.
    let p1_created_fields = BTreeSet::from([
        "subject",
        "content",
        "stage_id",
        "priority",
        "properties.region",
    ]);
    let created_fields: BTreeSet<&str> = changed_fields(&p1_history[0]).into_iter().collect();
    assert_eq!(created_fields, p1_created_fields);
    let alice_p2 = world.tickets_as(&app, ALICE, Which::P2);
    assert_eq!(
        kinds(&history_as(&alice_p2, a, 100).await),
        [
            TicketEventKind::Created,
            TicketEventKind::CommentAdded,
            TicketEventKind::StageChanged,
        ]
    );

    // A CREATED event of a ticket full of hidden values.
    let secret = history_as(&alice, world.id("a-secret-i"), 100).await;
    assert_eq!(secret.len(), 1, "the internal comment is left out");
    let fields: BTreeSet<&str> = changed_fields(&secret[0]).into_iter().collect();
    assert_eq!(fields, p1_created_fields);

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
