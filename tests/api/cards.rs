//! Chat cards (Kaizala's ticket card): templates loaded from a real card package, cards sent for a ticket and
//! kept in step with it, versioned property updates, renders and render streams.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

use ticketd::proto::{
    BatchUpdateTicketsRequest, Card, CardTemplate, CreateCardTemplateRequest, GetCardRequest,
    GetCardTemplateRequest, ListCardTemplatesRequest, ListCardsRequest, RenderCardRequest,
    RenderedCard, SendCardRequest, Ticket, WatchCardRequest,
    card_service_client::CardServiceClient,
};
use tonic::Code;

use crate::support::*;

both_databases!(
    // Templates
    create_card_template_keeps_the_kaizala_view_and_bindings,
    create_card_template_names_the_invalid_node,
    create_card_template_accepts_kaizala_spelling_variants,
    create_card_template_retried_with_the_same_request_id_creates_once,
    get_card_template_of_an_unknown_id_is_not_found,
    list_card_templates_pages,
    // Cards
    send_card_fills_bound_properties_from_the_ticket,
    send_card_validates_ticket_template_and_group,
    send_card_retried_with_the_same_request_id_sends_once,
    ticket_changes_update_bound_properties_and_the_version,
    update_card_properties_checks_the_version,
    bound_properties_follow_the_ticket_again_on_its_next_change,
    cards_sent_while_their_ticket_changes_end_at_its_last_values,
    list_cards_of_a_ticket_oldest_first,
    // Renders
    render_card_resolves_every_binding,
    render_card_renders_missing_values_empty,
    watch_card_follows_the_ticket_and_property_updates,
    watch_card_after_version_skips_covered_versions,
    watch_card_by_group_streams_every_card_of_the_group,
    a_slow_group_renderer_still_gets_every_version_in_order,
    shutdown_ends_card_streams,
);

postgres_only!(a_ticket_change_through_one_replica_reaches_a_renderer_on_another);

/// The fixture's card view, as text.
fn fixture_schema() -> String {
    kaizala_fixture("ChatCardView.json")
}

/// The fixture view after `edit` on its parsed JSON.
fn schema_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut view: Value = serde_json::from_str(&fixture_schema()).expect("the fixture is JSON");
    edit(&mut view);
    view.to_string()
}

/// The template most tests use: the fixture's view with the default bindings, named "Ticket card".
async fn create_template(app: &TestApp) -> CardTemplate {
    app.create_card_template(card_template_req("Ticket card"))
        .await
}

/// Moves a ticket to another stage as the test admin.
async fn move_to_stage(app: &TestApp, ticket_id: i64, stage_id: i64) -> Ticket {
    app.update_ticket(stage_change(ticket_id, stage_id), &["stage_id"])
        .await
}

/// What the fixture card shows for a ticket `id` in stage `status` with customer `customer`.
fn texts(customer: &str, id: i64, status: &str) -> Vec<String> {
    vec![
        KAIZALA_CARD_HEADER.to_owned(),
        customer.to_owned(),
        id.to_string(),
        status.to_owned(),
    ]
}

/// A card template, a ticket and a card for it sent to [`CARD_GROUP`].
async fn seed(app: &TestApp) -> (CardTemplate, Ticket, Card) {
    let template = create_template(app).await;
    let t = app.create_ticket(ticket("Printer on fire")).await;
    let card = app
        .send_card(send_card_req(template.id, t.id, CARD_GROUP))
        .await;
    (template, t, card)
}

// ---------------------------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------------------------

async fn create_card_template_keeps_the_kaizala_view_and_bindings(app: TestApp) {
    let created = create_template(&app).await;

    assert!(created.id > 0);
    assert_eq!(created.name, "Ticket card");
    assert_eq!(
        created.schema,
        fixture_schema(),
        "the view is kept as given"
    );
    assert_eq!(created.app_model, kaizala_fixture("AppModel.json"));
    assert_eq!(created.bindings, card_bindings());
    assert!(created.create_time.is_some());

    let fetched = ok(app
        .cards()
        .get_card_template(GetCardTemplateRequest { id: created.id })
        .await);
    assert_eq!(fetched, created);
}

async fn create_card_template_names_the_invalid_node(app: TestApp) {
    let invalid_color = CreateCardTemplateRequest {
        schema: schema_with(|view| view["schema"]["children"][2]["textColor"] = "#12".into()),
        ..card_template_req("bad colour")
    };
    assert_invalid(
        app.cards().create_card_template(invalid_color).await,
        "schema.children[2].textColor",
    );

    let unknown_expression = CreateCardTemplateRequest {
        schema: schema_with(|view| view["schema"]["children"][1]["string"] = "${foo}".into()),
        ..card_template_req("bad expression")
    };
    assert_invalid(
        app.cards().create_card_template(unknown_expression).await,
        "schema.children[1].string",
    );

    // `text` where Kaizala says `string`: it used to be accepted and render an empty line.
    let misspelt = CreateCardTemplateRequest {
        schema: schema_with(|view| {
            let node = &mut view["schema"]["children"][1];
            node["text"] = node["string"].take();
            if let Some(node) = node.as_object_mut() {
                node.remove("string");
            }
        }),
        ..card_template_req("misspelt text")
    };
    assert_invalid(
        app.cards().create_card_template(misspelt).await,
        "schema.children[1].text",
    );

    let unknown_path = CreateCardTemplateRequest {
        bindings: properties(&[("ticketnumber", "id"), ("ticketstatus", "stage.colour")]),
        ..card_template_req("bad binding")
    };
    assert_invalid(
        app.cards().create_card_template(unknown_path).await,
        "bindings.ticketstatus",
    );

    let nameless = card_template_req("");
    assert_invalid(app.cards().create_card_template(nameless).await, "name");

    let not_json = CreateCardTemplateRequest {
        schema: "{\"schemaVersion\": 2, \"schema\": ".into(),
        ..card_template_req("not JSON")
    };
    let status = assert_code(
        app.cards().create_card_template(not_json).await,
        Code::InvalidArgument,
    );
    use tonic_types::StatusExt;
    let violations = status
        .get_details_bad_request()
        .map(|b| b.field_violations)
        .unwrap_or_default();
    assert!(
        violations.iter().any(|v| v.field.starts_with("schema")),
        "a view that is not JSON is a violation of a `schema…` field, got {violations:?} ({:?})",
        status.message()
    );

    let listed = ok(app
        .cards()
        .list_card_templates(ListCardTemplatesRequest::default())
        .await);
    assert!(
        listed.card_templates.is_empty(),
        "no invalid template was stored: {:?}",
        listed.card_templates
    );
}

async fn create_card_template_accepts_kaizala_spelling_variants(app: TestApp) {
    // The fixture README: real packages spell keys and values with varying case.
    let schema = schema_with(|view| {
        let children = &mut view["schema"]["children"];
        children[0]["type"] = "Text".into();
        children[0]["fontStyle"] = "BOLD".into();
        children[3]["string"] = "${Form.Properties[ticketstatus].Value}".into();
    });
    let template = ok(app
        .cards()
        .create_card_template(CreateCardTemplateRequest {
            schema: schema.clone(),
            ..card_template_req("varied spelling")
        })
        .await);
    assert_eq!(template.schema, schema);

    let t = app.create_ticket(ticket("spelled differently")).await;
    let card = app
        .send_card(send_card_req(template.id, t.id, CARD_GROUP))
        .await;
    assert_eq!(
        app.render_card(card.id).await.texts,
        texts(CARD_CUSTOMER, t.id, "New")
    );
}

async fn create_card_template_retried_with_the_same_request_id_creates_once(app: TestApp) {
    let request = CreateCardTemplateRequest {
        request_id: request_id(),
        ..card_template_req("retried")
    };
    let first = ok(app.cards().create_card_template(request.clone()).await);
    let retried = ok(app.cards().create_card_template(request).await);
    assert_eq!(retried, first);

    let listed = ok(app
        .cards()
        .list_card_templates(ListCardTemplatesRequest::default())
        .await);
    assert_eq!(listed.card_templates, vec![first]);
}

async fn get_card_template_of_an_unknown_id_is_not_found(app: TestApp) {
    assert_code(
        app.cards()
            .get_card_template(GetCardTemplateRequest { id: 424_242 })
            .await,
        Code::NotFound,
    );
}

async fn list_card_templates_pages(app: TestApp) {
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(ok(app
            .cards()
            .create_card_template(card_template_req(&format!("template {i}")))
            .await));
    }

    let mut request = ListCardTemplatesRequest {
        page_size: 2,
        ..Default::default()
    };
    let mut listed = Vec::new();
    let mut pages = 0;
    loop {
        let page = ok(app.cards().list_card_templates(request.clone()).await);
        pages += 1;
        assert!(page.card_templates.len() <= 2, "page size 2: {page:?}");
        listed.extend(page.card_templates);
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(pages < 10, "ListCardTemplates never ends");
        request.page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, created, "every template once, oldest first");
}

// ---------------------------------------------------------------------------------------------------------------
// Cards
// ---------------------------------------------------------------------------------------------------------------

async fn send_card_fills_bound_properties_from_the_ticket(app: TestApp) {
    let (template, t, card) = seed(&app).await;

    assert!(card.id > 0);
    assert_eq!(card.template_id, template.id);
    assert_eq!(card.ticket_id, t.id);
    assert_eq!(card.group_id, CARD_GROUP);
    assert_eq!(card.subscribers, strings(&[CARD_SUBSCRIBER]));
    assert!(!card.send_to_all_subscribers);
    assert_eq!(card.version, 1);
    assert_eq!(
        card.properties,
        properties(&[
            ("customername", CARD_CUSTOMER),
            ("ticketnumber", t.id.to_string().as_str()),
            ("ticketstatus", "New"),
        ])
    );
    assert!(card.create_time.is_some());
    assert!(card.update_time.is_some());

    assert_eq!(app.get_card(card.id).await, card);
}

async fn send_card_validates_ticket_template_and_group(app: TestApp) {
    let template = create_template(&app).await;
    let t = app.create_ticket(ticket("has no card")).await;

    assert_code(
        app.cards()
            .send_card(send_card_req(template.id, 424_242, CARD_GROUP))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.cards()
            .send_card(send_card_req(424_242, t.id, CARD_GROUP))
            .await,
        Code::NotFound,
    );
    assert_invalid(
        app.cards()
            .send_card(send_card_req(template.id, t.id, ""))
            .await,
        "group_id",
    );
    assert_code(
        app.cards()
            .get_card(GetCardRequest { card_id: 424_242 })
            .await,
        Code::NotFound,
    );

    let cards = ok(app
        .cards()
        .list_cards(ListCardsRequest {
            ticket_id: t.id,
            ..Default::default()
        })
        .await);
    assert!(
        cards.cards.is_empty(),
        "no card was sent: {:?}",
        cards.cards
    );
}

async fn send_card_retried_with_the_same_request_id_sends_once(app: TestApp) {
    let template = create_template(&app).await;
    let t = app.create_ticket(ticket("sent once")).await;
    let request = SendCardRequest {
        request_id: request_id(),
        ..send_card_req(template.id, t.id, CARD_GROUP)
    };
    let first = app.send_card(request.clone()).await;
    let retried = app.send_card(request).await;
    assert_eq!(retried, first);

    let cards = ok(app
        .cards()
        .list_cards(ListCardsRequest {
            ticket_id: t.id,
            ..Default::default()
        })
        .await);
    assert_eq!(cards.cards, vec![first]);
}

async fn ticket_changes_update_bound_properties_and_the_version(app: TestApp) {
    let (_, t, card) = seed(&app).await;

    move_to_stage(&app, t.id, 4).await;

    let changed = app.get_card(card.id).await;
    assert_eq!(
        changed.version, 2,
        "the ticket's change is a new card version"
    );
    assert_eq!(
        changed.properties,
        properties(&[
            ("customername", CARD_CUSTOMER),
            ("ticketnumber", t.id.to_string().as_str()),
            ("ticketstatus", "Closed"),
        ])
    );
    let rendered = app.render_card(card.id).await;
    assert_eq!(rendered.version, 2);
    assert_eq!(rendered.texts, texts(CARD_CUSTOMER, t.id, "Closed"));
}

async fn update_card_properties_checks_the_version(app: TestApp) {
    let (_, t, card) = seed(&app).await;
    let id = t.id.to_string();

    let last_write_wins = app
        .update_card(update_card_req(card.id, -1, &[("customername", "NAME: A")]))
        .await;
    assert_eq!(last_write_wins.version, 2);
    assert_eq!(last_write_wins.properties["customername"], "NAME: A");
    assert_eq!(last_write_wins.properties["ticketnumber"], id);

    let current = app
        .update_card(update_card_req(card.id, 2, &[("customername", "NAME: B")]))
        .await;
    assert_eq!(current.version, 3);
    assert_eq!(current.properties["customername"], "NAME: B");
    assert_eq!(app.get_card(card.id).await, current);

    let status = assert_code(
        app.cards()
            .update_card_properties(update_card_req(
                card.id,
                2,
                &[("customername", "NAME: stale")],
            ))
            .await,
        Code::Aborted,
    );
    assert!(!status.message().is_empty());
    assert_eq!(
        app.get_card(card.id).await,
        current,
        "a stale update changes nothing"
    );

    assert_code(
        app.cards()
            .update_card_properties(update_card_req(424_242, -1, &[("customername", "x")]))
            .await,
        Code::NotFound,
    );
}

async fn bound_properties_follow_the_ticket_again_on_its_next_change(app: TestApp) {
    let (_, t, card) = seed(&app).await;

    let overridden = app
        .update_card(update_card_req(
            card.id,
            -1,
            &[("ticketstatus", "STATUS: RESOLVED")],
        ))
        .await;
    assert_eq!(overridden.properties["ticketstatus"], "STATUS: RESOLVED");
    assert_eq!(
        app.render_card(card.id).await.texts,
        texts(CARD_CUSTOMER, t.id, "STATUS: RESOLVED")
    );

    move_to_stage(&app, t.id, 2).await;
    let recomputed = app.get_card(card.id).await;
    assert_eq!(recomputed.version, 3);
    assert_eq!(recomputed.properties["ticketstatus"], "Waiting on contact");
    assert_eq!(recomputed.properties["customername"], CARD_CUSTOMER);
}

/// Sends and ticket changes queue for the ticket's lock: a change that waited behind a send must find that
/// card and move it along.
async fn cards_sent_while_their_ticket_changes_end_at_its_last_values(app: TestApp) {
    let template = create_template(&app).await;
    let t = app.create_ticket(ticket("Printer on fire")).await;
    let sends = (0..3).map(|_| {
        let mut cards = app.cards();
        let request = send_card_req(template.id, t.id, CARD_GROUP);
        async move { cards.send_card(request).await }
    });
    let moves = [2, 3, 1, 2, 3, 1].map(|stage| {
        let mut tickets = app.tickets();
        let request = update_ticket_req(stage_change(t.id, stage), &["stage_id"]);
        async move { tickets.update_ticket(request).await }
    });
    let (sent, moved) = tokio::join!(
        futures::future::join_all(sends),
        futures::future::join_all(moves)
    );
    for result in moved {
        result.expect("every change succeeds");
    }
    // Sent after everything, so it shows the ticket as it ended.
    let witness = app
        .send_card(send_card_req(template.id, t.id, CARD_GROUP))
        .await;
    for card in sent {
        let card = card.expect("every send succeeds").into_inner();
        assert_eq!(
            app.get_card(card.id).await.properties["ticketstatus"],
            witness.properties["ticketstatus"],
            "card {} follows the ticket's last change",
            card.id
        );
    }
}

async fn list_cards_of_a_ticket_oldest_first(app: TestApp) {
    let template = create_template(&app).await;
    let t = app.create_ticket(ticket("many cards")).await;
    let other = app.create_ticket(ticket("other")).await;
    let mut sent = Vec::new();
    for group in ["group-a", "group-b", "group-c"] {
        sent.push(app.send_card(send_card_req(template.id, t.id, group)).await);
    }
    app.send_card(send_card_req(template.id, other.id, "group-a"))
        .await;

    let mut request = ListCardsRequest {
        ticket_id: t.id,
        page_size: 2,
        ..Default::default()
    };
    let mut listed = Vec::new();
    for _ in 0..10 {
        let page = ok(app.cards().list_cards(request.clone()).await);
        assert!(page.cards.len() <= 2);
        listed.extend(page.cards);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(listed, sent);
}

// ---------------------------------------------------------------------------------------------------------------
// Renders
// ---------------------------------------------------------------------------------------------------------------

/// The root container of a rendered view, whether or not it is wrapped in `{"schemaVersion", "schema"}`.
fn view_root(rendered: &RenderedCard) -> Value {
    let view: Value = serde_json::from_str(&rendered.view)
        .unwrap_or_else(|err| panic!("the view is not JSON ({err}): {}", rendered.view));
    match view.get("schema") {
        Some(root) if root.is_object() => root.clone(),
        _ => view,
    }
}

async fn render_card_resolves_every_binding(app: TestApp) {
    let (_, t, card) = seed(&app).await;

    let rendered = app.render_card(card.id).await;
    assert_eq!(rendered.card_id, card.id);
    assert_eq!(rendered.version, 1);
    assert_eq!(rendered.ticket_id, t.id);
    assert_eq!(rendered.group_id, CARD_GROUP);
    assert_eq!(rendered.texts, texts(CARD_CUSTOMER, t.id, "New"));

    assert!(
        !rendered.view.contains("${"),
        "every binding is replaced: {}",
        rendered.view
    );
    let root = view_root(&rendered);
    let strings: Vec<&str> = root["children"]
        .as_array()
        .unwrap_or_else(|| panic!("the view keeps its children: {root}"))
        .iter()
        .map(|child| child["string"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(strings, texts(CARD_CUSTOMER, t.id, "New"));
    assert_eq!(
        root["children"][0]["backgroundColor"], "#fcb72d",
        "styles are kept"
    );

    assert_code(
        app.cards()
            .render_card(RenderCardRequest { card_id: 424_242 })
            .await,
        Code::NotFound,
    );
}

async fn render_card_renders_missing_values_empty(app: TestApp) {
    let template = create_template(&app).await;
    let t = app.create_ticket(ticket("no customer name")).await;
    let card = app
        .send_card(SendCardRequest {
            properties: Default::default(),
            ..send_card_req(template.id, t.id, CARD_GROUP)
        })
        .await;

    let rendered = app.render_card(card.id).await;
    assert_eq!(rendered.texts, texts("", t.id, "New"));
    assert!(!rendered.view.contains("${"), "{}", rendered.view);
}

async fn watch_card_follows_the_ticket_and_property_updates(app: TestApp) {
    let (_, t, card) = seed(&app).await;
    let mut renders = app
        .watch_card(WatchCardRequest {
            card_id: card.id,
            ..Default::default()
        })
        .await;

    let current = next_message(&mut renders, "the current render").await;
    assert_eq!((current.card_id, current.version), (card.id, 1));
    assert!(
        current.texts.iter().any(|s| s == "New"),
        "{:?}",
        current.texts
    );
    assert_eq!(current.texts, texts(CARD_CUSTOMER, t.id, "New"));
    assert_eq!(
        (current.ticket_id, current.group_id.as_str()),
        (t.id, CARD_GROUP)
    );

    // The ticket closes; nobody touches the card.
    move_to_stage(&app, t.id, 4).await;
    let closed = next_message(&mut renders, "the render after the ticket closed").await;
    assert_eq!((closed.card_id, closed.version), (card.id, 2));
    assert!(
        closed.texts.iter().any(|s| s == "Closed"),
        "{:?}",
        closed.texts
    );
    assert_eq!(closed.texts, texts(CARD_CUSTOMER, t.id, "Closed"));

    let updated = app
        .update_card(update_card_req(
            card.id,
            -1,
            &[("customername", "NAME: Jane Doe")],
        ))
        .await;
    assert_eq!(updated.version, 3);
    let third = next_message(&mut renders, "the render after UpdateCardProperties").await;
    assert_eq!(third.version, 3);
    assert_eq!(third.texts, texts("NAME: Jane Doe", t.id, "Closed"));

    assert_code(
        app.cards()
            .update_card_properties(update_card_req(
                card.id,
                1,
                &[("customername", "NAME: stale")],
            ))
            .await,
        Code::Aborted,
    );
    // The refused update made no version: the next render is version 4, from this update.
    app.update_card(update_card_req(
        card.id,
        3,
        &[("customername", "NAME: J. Doe")],
    ))
    .await;
    let fourth = next_message(&mut renders, "the render after the next update").await;
    assert_eq!(fourth.version, 4);
    assert_eq!(fourth.texts, texts("NAME: J. Doe", t.id, "Closed"));
}

async fn watch_card_after_version_skips_covered_versions(app: TestApp) {
    let (_, t, card) = seed(&app).await;

    let mut renders = app
        .watch_card(WatchCardRequest {
            card_id: card.id,
            after_version: 1,
            ..Default::default()
        })
        .await;
    move_to_stage(&app, t.id, 3).await;
    let first = next_message(&mut renders, "the first render after version 1").await;
    assert_eq!(first.version, 2, "version 1 is covered by after_version");
    assert_eq!(first.texts, texts(CARD_CUSTOMER, t.id, "Waiting on us"));

    let mut from_start = app
        .watch_card(WatchCardRequest {
            card_id: card.id,
            ..Default::default()
        })
        .await;
    let current = next_message(&mut from_start, "the current render").await;
    assert_eq!(current, first, "the current render is version 2");

    assert_code(
        app.cards()
            .watch_card(WatchCardRequest {
                card_id: 424_242,
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

async fn watch_card_by_group_streams_every_card_of_the_group(app: TestApp) {
    let template = create_template(&app).await;
    let t1 = app.create_ticket(ticket("first in group")).await;
    let t2 = app.create_ticket(ticket("second in group")).await;
    let t3 = app.create_ticket(ticket("in another group")).await;
    let c1 = app
        .send_card(send_card_req(template.id, t1.id, "group-g"))
        .await;
    let c2 = app
        .send_card(send_card_req(template.id, t2.id, "group-g"))
        .await;
    let c3 = app
        .send_card(send_card_req(template.id, t3.id, "group-other"))
        .await;

    let mut renders = app
        .watch_card(WatchCardRequest {
            group_id: "group-g".into(),
            ..Default::default()
        })
        .await;
    let mut current = next_messages(&mut renders, 2, "the current renders of the group").await;
    current.sort_by_key(|r| r.card_id);
    assert_eq!(
        current
            .iter()
            .map(|r| (r.card_id, r.version, r.group_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(c1.id, 1, "group-g"), (c2.id, 1, "group-g")]
    );
    assert_eq!(current[0].texts, texts(CARD_CUSTOMER, t1.id, "New"));
    assert_eq!(current[1].texts, texts(CARD_CUSTOMER, t2.id, "New"));

    // A change to the other group's card is not streamed; the next render is the group's.
    move_to_stage(&app, t3.id, 4).await;
    assert_eq!(app.get_card(c3.id).await.version, 2);
    move_to_stage(&app, t2.id, 2).await;
    let next = next_message(&mut renders, "the render of the second card").await;
    assert_eq!((next.card_id, next.version), (c2.id, 2));
    assert_eq!(
        next.texts,
        texts(CARD_CUSTOMER, t2.id, "Waiting on contact")
    );

    app.update_card(update_card_req(c1.id, 1, &[("customername", "NAME: Ann")]))
        .await;
    let next = next_message(&mut renders, "the render of the first card").await;
    assert_eq!((next.card_id, next.version), (c1.id, 2));
    assert_eq!(next.texts, texts("NAME: Ann", t1.id, "New"));

    // A card sent to the group later is streamed too.
    let t4 = app.create_ticket(ticket("joins the group")).await;
    let c4 = app
        .send_card(send_card_req(template.id, t4.id, "group-g"))
        .await;
    let next = next_message(&mut renders, "the render of a card sent later").await;
    assert_eq!((next.card_id, next.version), (c4.id, 1));
}

const BUSY_CARDS: usize = 100;
const BUSY_ROUNDS: usize = 100;

async fn a_slow_group_renderer_still_gets_every_version_in_order(app: TestApp) {
    let template = create_template(&app).await;
    let requests = (0..BUSY_CARDS)
        .map(|i| create_ticket_req(ticket(&format!("busy {i}"))))
        .collect();
    let tickets = app.batch_create_tickets(requests).await;
    let mut card_ids = BTreeSet::new();
    for t in &tickets {
        card_ids.insert(
            app.send_card(send_card_req(template.id, t.id, "group-busy"))
                .await
                .id,
        );
    }

    // The renderer has a connection of its own and reads the current renders, then stops reading.
    let channel = connect(app.addr).await.expect("a second connection");
    let request = WatchCardRequest {
        group_id: "group-busy".into(),
        ..Default::default()
    };
    let mut renders = ok(CardServiceClient::with_interceptor(channel, admin_bearer())
        .watch_card(request)
        .await);
    let current = next_messages(&mut renders, BUSY_CARDS, "the current renders").await;
    assert_eq!(
        current.iter().map(|r| r.card_id).collect::<BTreeSet<_>>(),
        card_ids
    );
    assert!(current.iter().all(|r| r.version == 1));

    // Every round moves every ticket, so every card gets a new version: 10,000 renders in all.
    for round in 0..BUSY_ROUNDS {
        let stage_id = if round % 2 == 0 { 2 } else { 3 };
        let requests = tickets
            .iter()
            .map(|t| {
                update_ticket_req(
                    Ticket {
                        id: t.id,
                        stage_id,
                        ..Default::default()
                    },
                    &["stage_id"],
                )
            })
            .collect();
        ok(app
            .tickets()
            .batch_update_tickets(BatchUpdateTicketsRequest {
                requests,
                request_id: String::new(),
                ..Default::default()
            })
            .await);
    }
    let last_version = 1 + BUSY_ROUNDS as i64;
    for id in &card_ids {
        assert_eq!(app.get_card(*id).await.version, last_version, "card {id}");
    }

    // Now it reads: every card's versions 2..=last, in order, none twice, none missing.
    let mut versions: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut done = 0;
    let mut received = 0;
    while done < BUSY_CARDS {
        let render = next_message(
            &mut renders,
            &format!(
                "the slow renderer ({received} of {} renders so far, {done} cards complete)",
                BUSY_CARDS * BUSY_ROUNDS
            ),
        )
        .await;
        received += 1;
        assert!(
            card_ids.contains(&render.card_id),
            "a card of the group: {}",
            render.card_id
        );
        if render.version == last_version {
            done += 1;
        }
        versions
            .entry(render.card_id)
            .or_default()
            .push(render.version);
    }
    let expected: Vec<i64> = (2..=last_version).collect();
    let wrong: Vec<(i64, usize, Vec<i64>)> = versions
        .iter()
        .filter(|(_, seen)| **seen != expected)
        .map(|(id, seen)| {
            let missing = expected
                .iter()
                .filter(|v| !seen.contains(v))
                .copied()
                .collect();
            (*id, seen.len(), missing)
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {BUSY_CARDS} cards did not get versions 2..={last_version} exactly once in order; \
         (card, renders received, missing versions) of the first: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
}

async fn shutdown_ends_card_streams(app: TestApp) {
    let (_, _, card) = seed(&app).await;
    let mut by_card = app
        .watch_card(WatchCardRequest {
            card_id: card.id,
            ..Default::default()
        })
        .await;
    let mut by_group = app
        .watch_card(WatchCardRequest {
            group_id: CARD_GROUP.into(),
            ..Default::default()
        })
        .await;
    next_message(&mut by_card, "the current render").await;
    next_message(&mut by_group, "the current render of the group").await;

    let stopping = tokio::spawn(app.shutdown());
    for (what, stream) in [("by card", &mut by_card), ("by group", &mut by_group)] {
        match next_item(stream, what).await {
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}"),
            other => {
                panic!("{what}: a card stream must end with UNAVAILABLE at shutdown, got {other:?}")
            }
        }
    }
    tokio::time::timeout(std::time::Duration::from_secs(90), stopping)
        .await
        .expect("the server stops although card streams were open")
        .expect("shutdown returns Ok");
}

// ---------------------------------------------------------------------------------------------------------------
// Two replicas over one PostgreSQL database
// ---------------------------------------------------------------------------------------------------------------

async fn a_ticket_change_through_one_replica_reaches_a_renderer_on_another(app: TestApp) {
    let b = app.another_server().await;
    let (_, t, card) = seed(&app).await;
    let mut renders = app
        .watch_card(WatchCardRequest {
            card_id: card.id,
            ..Default::default()
        })
        .await;
    assert_eq!(
        next_message(&mut renders, "the current render")
            .await
            .version,
        1
    );

    b.update_ticket(stage_change(t.id, 4), &["stage_id"]).await;
    let closed = next_message(&mut renders, "the render after a change through B").await;
    assert_eq!(closed.version, 2);
    assert_eq!(closed.texts, texts(CARD_CUSTOMER, t.id, "Closed"));

    b.update_card(update_card_req(
        card.id,
        2,
        &[("customername", "NAME: via B")],
    ))
    .await;
    let third = next_message(&mut renders, "the render after an update through B").await;
    assert_eq!(third.version, 3);

    drop(renders);
    b.shutdown().await;
    app.shutdown().await;
}
