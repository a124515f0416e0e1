//! Customer views fail closed: a field the portal does not list reaches the customer nowhere — not in reads,
//! searches, history or streams — and a card showing a hidden field is refused whether the template binds it or
//! writes it inside its view.

use ticketd::proto::{
    BatchGetTicketsRequest, GetCardRequest, GetTicketRequest, ListCardsRequest, Portal, Priority,
    WatchTicketsRequest,
};
use tokio_stream::StreamExt;

use super::*;

both_databases!(
    a_field_the_portal_does_not_list_never_reaches_its_customer,
    a_card_showing_a_hidden_field_inside_its_view_is_refused,
);

const CUSTOMER: &str = "cust-1";
const ORG: &str = "org-x";

/// The token of a customer (of [`ORG`]) whose portal shows its own tickets and lists no field at all.
async fn customer_with_bare_portal(app: &TestApp) -> String {
    let portal = app
        .create_portal(Portal {
            name: "bare".to_owned(),
            requested_tickets: true,
            ..Default::default()
        })
        .await;
    customer_token(CUSTOMER, ORG, portal.id)
}

/// The fields every customer sees are the only ones left set.
fn assert_bare(ticket: &Ticket, full: &Ticket, what: &str) {
    assert_eq!(
        (ticket.id, ticket.subject.as_str(), ticket.content.as_str()),
        (full.id, full.subject.as_str(), full.content.as_str()),
        "{what}: always-visible fields"
    );
    assert_eq!(ticket.etag, full.etag, "{what}: etag");
    let hidden = Ticket {
        id: ticket.id,
        subject: ticket.subject.clone(),
        content: ticket.content.clone(),
        etag: ticket.etag.clone(),
        create_time: ticket.create_time,
        update_time: ticket.update_time,
        close_time: ticket.close_time,
        archive_time: ticket.archive_time,
        archived: ticket.archived,
        ..Default::default()
    };
    assert_eq!(ticket, &hidden, "{what}: every other field goes out empty");
}

async fn a_field_the_portal_does_not_list_never_reaches_its_customer(app: TestApp) {
    define_properties(&app).await;
    let mut customer = app.tickets_as(&customer_with_bare_portal(&app).await);
    let mut agent = agent(&app);
    // An event before ours, so the stream below can resume from a cursor above zero (zero means "from now").
    ok(agent
        .create_ticket(create_ticket_req(ticket("someone else's")))
        .await);
    let full = ok(agent
        .create_ticket(create_ticket_req(Ticket {
            content: "every field set".to_owned(),
            priority: Priority::Urgent.into(),
            requester_id: CUSTOMER.to_owned(),
            assignee_id: "agent-7".to_owned(),
            organization_id: ORG.to_owned(),
            ticket_type: "incident".to_owned(),
            tags: strings(&["vip"]),
            project_id: "proj-9".to_owned(),
            external_id: "zendesk-9".to_owned(),
            properties: properties(&[("region", "EMEA"), ("internal_score", "42")]),
            ..ticket("a ticket with every field set")
        }))
        .await);
    assert!(full.stage_id != 0 && full.pipeline_id == 0 && !full.tags.is_empty());

    let got = ok(customer.get_ticket(GetTicketRequest { id: full.id }).await);
    assert_bare(&got, &full, "GetTicket");
    let batch = ok(customer
        .batch_get_tickets(BatchGetTicketsRequest { ids: vec![full.id] })
        .await);
    assert_bare(&batch.tickets[0], &full, "BatchGetTickets");
    let listed = list_all_as(&customer, 10).await;
    assert_eq!(listed.len(), 1);
    assert_bare(&listed[0], &full, "ListTickets");
    let found = every_match(
        &customer,
        SearchTicketsRequest {
            query: "every field".to_owned(),
            page_size: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found.len(), 1);
    assert_bare(&found[0], &full, "SearchTickets");

    // The creation's history names only what every customer sees; the stream's snapshot is bare too.
    let always = ["subject", "content", "close_time"];
    let history = history_as(&customer, full.id, 50).await;
    assert!(!history.is_empty());
    for event in &history {
        for change in &event.changes {
            assert!(
                always.contains(&change.field.as_str()),
                "history shows {} to a customer whose portal lists nothing",
                change.field
            );
        }
    }
    let mut stream = open_stream(
        customer.watch_tickets(WatchTicketsRequest {
            ticket_ids: vec![full.id],
            after_event_id: history[0].event_id - 1,
            ..Default::default()
        }),
        "WatchTickets",
    )
    .await
    .expect("a customer may watch its tickets");
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .expect("the creation is replayed")
        .expect("the stream is open")
        .expect("an event");
    for change in &event.changes {
        assert!(always.contains(&change.field.as_str()), "{}", change.field);
    }
    assert_bare(
        event.ticket.as_ref().expect("a snapshot"),
        &full,
        "WatchTickets",
    );
}

async fn a_card_showing_a_hidden_field_inside_its_view_is_refused(app: TestApp) {
    let token = customer_with_bare_portal(&app).await;
    let mut customer = app.tickets_as(&token);
    let mut agent = agent(&app);
    let ticket = ok(agent
        .create_ticket(create_ticket_req(Ticket {
            requester_id: CUSTOMER.to_owned(),
            assignee_id: "agent-7".to_owned(),
            ..ticket("a card's ticket")
        }))
        .await);
    // The real package's view, with the assignee written into its title: no binding names it.
    let view = kaizala_fixture("ChatCardView.json")
        .replace("XYZ CUSTOMER CARE", "Your agent: ${ticket.assignee_id}");
    assert!(view.contains("${ticket.assignee_id}"));
    let inline = ok(app
        .cards()
        .create_card_template(CreateCardTemplateRequest {
            name: "assignee inside the view".to_owned(),
            schema: view,
            app_model: kaizala_fixture("AppModel.json"),
            bindings: properties(&[("ticketnumber", "subject")]),
            request_id: String::new(),
        })
        .await);
    let shown = card_template(&app, "subject only", &[("ticketnumber", "subject")]).await;
    let hidden_card = send_alice_card(&app, inline.id, ticket.id).await;
    let visible_card = send_alice_card(&app, shown.id, ticket.id).await;

    let mut cards = app.cards_as(&token);
    assert_field_denied(
        cards
            .get_card(GetCardRequest {
                card_id: hidden_card.id,
            })
            .await,
        "card_id",
    );
    ok(cards
        .get_card(GetCardRequest {
            card_id: visible_card.id,
        })
        .await);
    let listed = ok(cards
        .list_cards(ListCardsRequest {
            ticket_id: ticket.id,
            page_size: 50,
            page_token: String::new(),
        })
        .await);
    assert_eq!(
        listed.cards.iter().map(|card| card.id).collect::<Vec<_>>(),
        [visible_card.id],
        "a card showing a hidden field is left out of the customer's listing"
    );
    // The customer can still read its ticket: only the card is withheld.
    ok(customer
        .get_ticket(GetTicketRequest { id: ticket.id })
        .await);
}
