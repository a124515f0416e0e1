//! Chat cards for customers (item 10): readable only for visible tickets and only when every binding is a
//! visible field.

use std::time::Duration;

use ticketd::proto::{
    GetCardRequest, GetCardTemplateRequest, ListCardTemplatesRequest, ListCardsRequest,
    RenderCardRequest, Ticket, WatchCardRequest,
};
use tonic::Code;

use super::*;

both_databases!(
    customers_read_cards_of_visible_tickets_that_bind_visible_fields,
    cards_of_invisible_tickets_are_not_found_for_customers,
    cards_binding_hidden_fields_are_refused_and_left_out_of_listings,
    a_card_stream_stops_delivering_once_its_ticket_leaves_the_customers_view,
);

async fn customers_read_cards_of_visible_tickets_that_bind_visible_fields(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let template = visible_card_template(&app).await;
    let card = send_alice_card(&app, template.id, a).await;
    let admin_card = app.get_card(card.id).await;
    let admin_render = app.render_card(card.id).await;
    assert_eq!(
        admin_render.texts,
        strings(&[
            KAIZALA_CARD_HEADER,
            ALICE_CARD_NAME,
            "Printer jammed",
            &world.stages[1].label
        ])
    );

    for (customer, which) in [(ALICE, Which::P1), (AMY, Which::P1), (ALICE, Which::P2)] {
        let what = format!("{} through {which:?}", customer.sub);
        let mut cards = app.cards_as(&world.token(customer, which));
        assert_eq!(
            ok(cards.get_card(GetCardRequest { card_id: card.id }).await),
            admin_card,
            "{what}: GetCard"
        );
        assert_eq!(
            ok(cards
                .render_card(RenderCardRequest { card_id: card.id })
                .await),
            admin_render,
            "{what}: RenderCard"
        );
        assert_eq!(
            ok(cards
                .list_cards(ListCardsRequest {
                    ticket_id: a,
                    ..Default::default()
                })
                .await)
            .cards,
            std::slice::from_ref(&admin_card),
            "{what}: ListCards"
        );
    }

    // WatchCard by card_id: the current render, then the ticket's next visible change.
    let mut cards = app.cards_as(&world.token(ALICE, Which::P1));
    let mut stream = open_stream(
        cards.watch_card(WatchCardRequest {
            card_id: card.id,
            ..Default::default()
        }),
        "alice's card watch",
    )
    .await
    .expect("alice may watch the card");
    assert_eq!(
        next_message(&mut stream, "alice's card watch").await,
        admin_render
    );
    set_subject(&app, a, "Printer fixed?").await;
    let next = next_message(&mut stream, "alice's card watch").await;
    assert_eq!(next.version, admin_render.version + 1);
    assert_eq!(next.texts[2], "Printer fixed?");
}

async fn cards_of_invisible_tickets_are_not_found_for_customers(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let template = visible_card_template(&app).await;
    let card = send_alice_card(&app, template.id, a).await;
    let missing = card.id + 1_000;
    for (customer, which) in [(BOB, Which::P1), (AMY, Which::P2), (BOB, Which::P2)] {
        let what = format!("{} through {which:?}", customer.sub);
        let mut cards = app.cards_as(&world.token(customer, which));
        let pairs = [
            (
                status_of(cards.get_card(GetCardRequest { card_id: card.id }).await),
                status_of(cards.get_card(GetCardRequest { card_id: missing }).await),
            ),
            (
                status_of(
                    cards
                        .render_card(RenderCardRequest { card_id: card.id })
                        .await,
                ),
                status_of(
                    cards
                        .render_card(RenderCardRequest { card_id: missing })
                        .await,
                ),
            ),
            (
                status_of(
                    cards
                        .watch_card(WatchCardRequest {
                            card_id: card.id,
                            ..Default::default()
                        })
                        .await,
                ),
                status_of(
                    cards
                        .watch_card(WatchCardRequest {
                            card_id: missing,
                            ..Default::default()
                        })
                        .await,
                ),
            ),
        ];
        for (index, (invisible, absent)) in pairs.iter().enumerate() {
            assert_eq!(invisible.code(), Code::NotFound, "{what}: call #{index}");
            assert_eq!(invisible.message(), format!("card {} not found", card.id));
            assert_same_answer(
                invisible,
                card.id,
                absent,
                missing,
                &format!("{what}: call #{index}"),
            );
        }
        assert_not_found(
            cards
                .list_cards(ListCardsRequest {
                    ticket_id: a,
                    ..Default::default()
                })
                .await,
            "ticket",
            a,
        );
    }

    // Group streams hold many tickets' cards: refused to customers even for a visible ticket.
    let mut alice_cards = app.cards_as(&world.token(ALICE, Which::P1));
    assert_field_denied(
        alice_cards
            .watch_card(WatchCardRequest {
                group_id: "group-1".to_owned(),
                ..Default::default()
            })
            .await,
        "group_id",
    );
    // Templates and card writes are the desk's.
    assert_not_for_customers(
        alice_cards.send_card(alice_card_req(template.id, a)).await,
        "SendCard",
    );
    assert_not_for_customers(
        alice_cards
            .update_card_properties(update_card_req(
                card.id,
                -1,
                &[("customername", "NAME: Mallory")],
            ))
            .await,
        "UpdateCardProperties",
    );
    assert_not_for_customers(
        alice_cards
            .get_card_template(GetCardTemplateRequest { id: template.id })
            .await,
        "GetCardTemplate",
    );
    assert_not_for_customers(
        alice_cards
            .list_card_templates(ListCardTemplatesRequest::default())
            .await,
        "ListCardTemplates",
    );
    assert_eq!(
        app.get_card(card.id).await.version,
        card.version,
        "the refused update changed nothing"
    );
}

async fn cards_binding_hidden_fields_are_refused_and_left_out_of_listings(app: TestApp) {
    let world = setup(&app).await;
    let a = world.id("a-alice-q");
    let shown = send_alice_card(&app, visible_card_template(&app).await.id, a).await;
    let by_id = send_alice_card(
        &app,
        card_template(&app, "id", &[("ticketnumber", "id")])
            .await
            .id,
        a,
    )
    .await;
    let assignee = send_alice_card(
        &app,
        card_template(
            &app,
            "assignee",
            &[
                ("ticketnumber", "assignee_id"),
                ("ticketstatus", "stage.label"),
            ],
        )
        .await
        .id,
        a,
    )
    .await;
    let score = send_alice_card(
        &app,
        card_template(
            &app,
            "score",
            &[("ticketnumber", "properties.internal_score")],
        )
        .await
        .id,
        a,
    )
    .await;
    let region = send_alice_card(
        &app,
        card_template(&app, "region", &[("ticketnumber", "properties.region")])
            .await
            .id,
        a,
    )
    .await;
    let all = [&shown, &by_id, &assignee, &score, &region];
    let agent_cards = ok(app
        .cards_as(&agent_token(AGENT))
        .list_cards(ListCardsRequest {
            ticket_id: a,
            ..Default::default()
        })
        .await);
    assert_eq!(
        agent_cards.cards.iter().map(|c| c.id).collect::<Vec<_>>(),
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        "the agent lists every card"
    );

    // (customer, portal, readable cards, refused cards)
    let cases = [
        (
            ALICE,
            Which::P1,
            vec![&shown, &by_id, &region],
            vec![&assignee, &score],
        ),
        (
            AMY,
            Which::P1,
            vec![&shown, &by_id, &region],
            vec![&assignee, &score],
        ),
        (
            ALICE,
            Which::P2,
            vec![&shown, &by_id],
            vec![&assignee, &score, &region],
        ),
    ];
    for (customer, which, readable, refused) in cases {
        let what = format!("{} through {which:?}", customer.sub);
        let mut cards = app.cards_as(&world.token(customer, which));
        let request = ListCardsRequest {
            ticket_id: a,
            page_size: 2,
            ..Default::default()
        };
        let listed = every_card(&cards, request).await;
        assert_eq!(
            listed.iter().map(|c| c.id).collect::<Vec<_>>(),
            readable.iter().map(|c| c.id).collect::<Vec<_>>(),
            "{what}: ListCards leaves out cards showing hidden fields"
        );
        for card in readable {
            assert_eq!(
                ok(cards.get_card(GetCardRequest { card_id: card.id }).await).id,
                card.id,
                "{what}"
            );
            ok(cards
                .render_card(RenderCardRequest { card_id: card.id })
                .await);
        }
        for card in refused {
            assert_field_denied(
                cards.get_card(GetCardRequest { card_id: card.id }).await,
                "card_id",
            );
            assert_field_denied(
                cards
                    .render_card(RenderCardRequest { card_id: card.id })
                    .await,
                "card_id",
            );
            assert_field_denied(
                cards
                    .watch_card(WatchCardRequest {
                        card_id: card.id,
                        ..Default::default()
                    })
                    .await,
                "card_id",
            );
        }
    }
}

async fn a_card_stream_stops_delivering_once_its_ticket_leaves_the_customers_view(app: TestApp) {
    let world = setup(&app).await;
    let member = world.id("a-member-q");
    let card = send_alice_card(&app, visible_card_template(&app).await.id, member).await;
    let mut amy_cards = app.cards_as(&world.token(AMY, Which::P1));
    let watch = |card_id| WatchCardRequest {
        card_id,
        ..Default::default()
    };
    let mut amy_stream = open_stream(amy_cards.watch_card(watch(card.id)), "amy's card watch")
        .await
        .expect("amy sees carol's org-a ticket");
    let mut admin_cards = app.cards();
    let mut admin_stream = open_stream(
        admin_cards.watch_card(watch(card.id)),
        "the admin's card watch",
    )
    .await
    .expect("admins watch every card");
    let first = next_message(&mut amy_stream, "amy's card watch").await;
    assert_eq!(first.texts[2], "Invoice copy");
    next_message(&mut admin_stream, "the admin's card watch").await;

    // The ticket moves to another organization: amy no longer sees it, nor its card.
    ok(agent(&app)
        .update_ticket(update_ticket_req(
            Ticket {
                id: member,
                organization_id: ORG_Z.to_owned(),
                ..Default::default()
            },
            &["organization_id"],
        ))
        .await);
    assert_not_found(
        amy_cards
            .get_card(GetCardRequest { card_id: card.id })
            .await,
        "card",
        card.id,
    );
    set_subject(&app, member, "Invoice copy (confidential, moved to org-z)").await;
    let render = next_message(&mut admin_stream, "the admin's card watch").await;
    assert_eq!(
        render.texts[2],
        "Invoice copy (confidential, moved to org-z)"
    );

    // The render that reached the admin's stream must not reach amy's: her stream may end or stay silent.
    match tokio::time::timeout(Duration::from_secs(2), amy_stream.message()).await {
        Err(_) | Ok(Ok(None)) | Ok(Err(_)) => {}
        Ok(Ok(Some(leaked))) => panic!(
            "a customer's WatchCard stream kept delivering renders of a ticket it no longer sees: {:?}",
            leaked.texts
        ),
    }
}
