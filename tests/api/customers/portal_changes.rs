//! Portal changes reaching customers (item 9): changed settings and properties apply on the customer's next
//! call, and a deleted portal refuses every call of its customers.

use ticketd::proto::{
    BatchGetTicketsRequest, CommentVisibility, DeletePortalRequest, DeleteTimeEntryRequest,
    FilterOperator, FollowTicketRequest, GetCardRequest, GetPipelineRequest, GetPortalRequest,
    GetTicketRequest, ListCardsRequest, ListCommentsRequest, ListFollowersRequest,
    ListPipelinesRequest, ListTicketHistoryRequest, ListTicketsRequest, ListTimeEntriesRequest,
    Portal, Priority, PropertyDefinition, RenderCardRequest, SearchTicketsRequest, Ticket,
    WatchCardRequest,
};
use tonic::{Code, Status};

use super::*;

both_databases!(
    portal_and_property_changes_apply_on_the_customers_next_call,
    a_deleted_portal_refuses_its_customers_ticket_and_card_calls,
    a_deleted_portal_refuses_every_other_call_of_its_customers,
);

async fn portal_and_property_changes_apply_on_the_customers_next_call(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);
    let mut admin = app.portals();
    let region_of = |ticket: &Ticket| ticket.properties.get("region").cloned();
    assert_eq!(
        region_of(&ok(alice.get_ticket(GetTicketRequest { id: a }).await)),
        Some("apac".to_owned())
    );

    // The property stops being customer_visible: hidden although P1 lists it, and no longer editable.
    let set_visible = |visible: bool| {
        update_property_req(
            PropertyDefinition {
                name: "region".to_owned(),
                customer_visible: visible,
                ..Default::default()
            },
            &["customer_visible"],
        )
    };
    ok(app.properties().update_property(set_visible(false)).await);
    let hidden = ok(alice.get_ticket(GetTicketRequest { id: a }).await);
    assert_eq!(region_of(&hidden), None);
    assert_field_denied(
        alice
            .update_ticket(update_ticket_req(
                property_change(a, &[("region", "emea")]),
                &["properties.region"],
            ))
            .await,
        "ticket.properties.region",
    );
    assert_field_denied(
        alice
            .search_tickets(search_req(vec![filter(
                "region",
                FilterOperator::Eq,
                "apac",
            )]))
            .await,
        "filter_groups[0].filters[0].property",
    );
    ok(app.properties().update_property(set_visible(true)).await);
    assert_eq!(
        region_of(&ok(alice.get_ticket(GetTicketRequest { id: a }).await)),
        Some("apac".to_owned())
    );

    // The portal stops listing region and priority.
    let updated = ok(admin
        .update_portal(update_portal_req(
            Portal {
                id: world.p1.id,
                visible_properties: strings(&["stage_id", "tags"]),
                editable_properties: strings(&["tags"]),
                ..Default::default()
            },
            &["visible_properties", "editable_properties"],
        ))
        .await);
    let seen = ok(alice.get_ticket(GetTicketRequest { id: a }).await);
    assert_eq!(seen, world.redact(&updated, &app.get_ticket(a).await));
    assert_eq!(region_of(&seen), None);
    assert_eq!(seen.priority, 0);
    assert_eq!(seen.tags, strings(&["vip"]), "tags are listed now");
    assert_field_denied(
        alice
            .update_ticket(update_ticket_req(
                Ticket {
                    id: a,
                    priority: Priority::Low.into(),
                    ..Default::default()
                },
                &["priority"],
            ))
            .await,
        "ticket.priority",
    );
    let retagged = ok(alice
        .update_ticket(update_ticket_req(
            Ticket {
                id: a,
                tags: strings(&["mine"]),
                ..Default::default()
            },
            &["tags"],
        ))
        .await);
    assert_eq!(retagged.tags, strings(&["mine"]));

    // Ticket types and rules: incidents only, then requested ones only.
    ok(admin
        .update_portal(update_portal_req(
            Portal {
                id: world.p1.id,
                ticket_types: strings(&[INCIDENT]),
                ..Default::default()
            },
            &["ticket_types"],
        ))
        .await);
    assert_eq!(
        ids(&list_all_as(&alice, 50).await),
        world.ids_of(&["a-alice-i", "a-secret-i"])
    );
    assert_not_found(
        alice.get_ticket(GetTicketRequest { id: a }).await,
        "ticket",
        a,
    );
    ok(admin
        .update_portal(update_portal_req(
            Portal {
                id: world.p1.id,
                organization_tickets: false,
                ..Default::default()
            },
            &["organization_tickets"],
        ))
        .await);
    assert_eq!(
        ids(&list_all_as(&alice, 50).await),
        world.ids_of(&["a-alice-i"])
    );
    let amy = world.tickets_as(&app, AMY, Which::P1);
    assert!(
        list_all_as(&amy, 50).await.is_empty(),
        "amy requested no incident"
    );

    // Time logging switched off.
    let incident = world.id("a-alice-i");
    ok(alice
        .log_time(log_time_req(incident, 5, "2024-05-03"))
        .await);
    ok(admin
        .update_portal(update_portal_req(
            Portal {
                id: world.p1.id,
                time_logging: false,
                ..Default::default()
            },
            &["time_logging"],
        ))
        .await);
    assert_field_denied(
        alice
            .log_time(log_time_req(incident, 5, "2024-05-03"))
            .await,
        "ticket_id",
    );
}

async fn a_deleted_portal_refuses_its_customers_ticket_and_card_calls(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let template = visible_card_template(&app).await;
    let card = send_alice_card(&app, template.id, a).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P2);
    assert_eq!(ok(alice.get_ticket(GetTicketRequest { id: a }).await).id, a);

    ok(app
        .portals()
        .delete_portal(DeletePortalRequest {
            id: world.p2.id,
            etag: world.p2.etag.clone(),
            request_id: String::new(),
        })
        .await);

    // Every call of a P2 customer is refused from now on, naming the portal.
    for customer in [ALICE, AMY, BOB] {
        let mut client = world.tickets_as(&app, customer, Which::P2);
        assert_field_denied(
            client.get_ticket(GetTicketRequest { id: a }).await,
            "portal",
        );
        assert_field_denied(
            client.list_tickets(ListTicketsRequest::default()).await,
            "portal",
        );
    }
    assert_field_denied(
        alice.search_tickets(SearchTicketsRequest::default()).await,
        "portal",
    );
    assert_field_denied(
        alice
            .batch_get_tickets(BatchGetTicketsRequest { ids: vec![a] })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .create_ticket(create_ticket_req(Ticket {
                subject: "after the portal is gone".to_owned(),
                ticket_type: QUESTION.to_owned(),
                ..Default::default()
            }))
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .update_ticket(update_ticket_req(subject_change(a, "gone"), &["subject"]))
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .add_comment(comment_req(a, "hello?", CommentVisibility::Public))
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_comments(ListCommentsRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_ticket_history(ListTicketHistoryRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(alice.watch_tickets(watch_all(0)).await, "portal");
    assert_field_denied(
        alice
            .follow_ticket(FollowTicketRequest {
                ticket_id: a,
                follower_id: String::new(),
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_followers(ListFollowersRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice.log_time(log_time_req(a, 5, "2024-05-03")).await,
        "portal",
    );
    assert_field_denied(
        alice
            .list_time_entries(ListTimeEntriesRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        alice
            .delete_time_entry(DeleteTimeEntryRequest {
                id: world.agent_entry.id,
            })
            .await,
        "portal",
    );
    let mut cards = app.cards_as(&world.token(ALICE, Which::P2));
    assert_field_denied(
        cards.get_card(GetCardRequest { card_id: card.id }).await,
        "portal",
    );
    assert_field_denied(
        cards
            .render_card(RenderCardRequest { card_id: card.id })
            .await,
        "portal",
    );
    assert_field_denied(
        cards
            .list_cards(ListCardsRequest {
                ticket_id: a,
                ..Default::default()
            })
            .await,
        "portal",
    );
    assert_field_denied(
        cards
            .watch_card(WatchCardRequest {
                card_id: card.id,
                ..Default::default()
            })
            .await,
        "portal",
    );

    // P1's customers are not affected.
    let mut alice_p1 = world.tickets_as(&app, ALICE, Which::P1);
    assert_eq!(
        ok(alice_p1.get_ticket(GetTicketRequest { id: a }).await).id,
        a
    );
}

async fn a_deleted_portal_refuses_every_other_call_of_its_customers(app: TestApp) {
    let world = setup(&app).await;
    let token = world.token(BOB, Which::P2);
    ok(app
        .portals()
        .delete_portal(DeletePortalRequest {
            id: world.p2.id,
            ..Default::default()
        })
        .await);

    // portals.proto: "Customers whose token names a deleted portal are refused with PERMISSION_DENIED from
    // then on": every method open to customers, not only the ones that read tickets.
    let mut answers: Vec<(&str, Result<(), Status>)> = Vec::new();
    answers.push((
        "PortalService/GetPortal (its own)",
        app.portals_as(&token)
            .get_portal(GetPortalRequest { id: world.p2.id })
            .await
            .map(drop),
    ));
    answers.push((
        "PipelineService/GetPipeline",
        app.pipelines_as(&token)
            .get_pipeline(GetPipelineRequest { id: 0 })
            .await
            .map(drop),
    ));
    answers.push((
        "PipelineService/ListPipelines",
        app.pipelines_as(&token)
            .list_pipelines(ListPipelinesRequest::default())
            .await
            .map(drop),
    ));
    let not_refused: Vec<String> = answers
        .iter()
        .filter(
            |(_, answer)| !matches!(answer, Err(status) if status.code() == Code::PermissionDenied),
        )
        .map(|(method, answer)| match answer {
            Ok(()) => format!("{method}: OK"),
            Err(status) => format!("{method}: {:?} {:?}", status.code(), status.message()),
        })
        .collect();
    assert!(
        not_refused.is_empty(),
        "a customer of a deleted portal must get PERMISSION_DENIED on every call; these answered otherwise: \
         {not_refused:#?}"
    );
}
