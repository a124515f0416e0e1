//! `Ticket.external_id`: the ticket's id in the system it came from. Optional, unique when set, settable on
//! create only, searchable, and hidden from customers unless their portal lists it.

use futures::future::join_all;
use ticketd::proto::{
    BatchCreateTicketsRequest, BatchGetTicketsRequest, FilterOperator, GetCardRequest,
    GetTicketRequest, ListTicketsRequest, Portal, SearchTicketsRequest, Ticket, TicketEventKind,
    UpdateTicketRequest, WatchTicketsRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

both_databases!(
    // Staff
    a_ticket_created_with_an_external_id_reads_it_back,
    an_external_id_is_trimmed_and_bounded,
    a_taken_external_id_is_already_exists_and_writes_nothing,
    a_batch_reusing_an_external_id_is_refused_whole_naming_the_item,
    concurrent_creates_of_one_external_id_let_one_win,
    any_number_of_tickets_have_no_external_id,
    updates_never_change_an_external_id,
    searches_find_tickets_by_external_id,
    history_records_the_external_id_at_creation,
    // Customers
    a_portal_not_listing_external_id_hides_it_everywhere,
    a_portal_listing_external_id_shows_it_but_never_lets_customers_set_it,
    a_card_showing_the_external_id_needs_a_portal_listing_it,
);

const ZENDESK_ID: &str = "zendesk-4711";
const CUSTOMER: &str = "cust-1";
const ORG: &str = "org-x";

/// A ticket carrying `external_id`.
fn imported(subject: &str, external_id: &str) -> Ticket {
    Ticket {
        external_id: external_id.to_owned(),
        ..ticket(subject)
    }
}

/// ALREADY_EXISTS naming `ticket.external_id` with the taken value, in the message and in the ErrorInfo.
#[track_caller]
fn assert_external_id_taken(status: &tonic::Status, value: &str) {
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(
        status.message().contains("ticket.external_id") && status.message().contains(value),
        "the message names the field and the value: {:?}",
        status.message()
    );
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "TICKET_ALREADY_EXISTS");
    assert_eq!(
        info.metadata.get("ticket.external_id").map(String::as_str),
        Some(value),
        "{info:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------------------------------

async fn a_ticket_created_with_an_external_id_reads_it_back(app: TestApp) {
    let created = app
        .create_ticket(imported("from Zendesk", ZENDESK_ID))
        .await;
    assert_eq!(created.external_id, ZENDESK_ID);
    assert_eq!(app.get_ticket(created.id).await, created);

    let listed = app.list_all_tickets(ListTicketsRequest::default()).await;
    assert_eq!(listed, std::slice::from_ref(&created));
    let batch = ok(app
        .tickets()
        .batch_get_tickets(BatchGetTicketsRequest {
            ids: vec![created.id],
        })
        .await);
    assert_eq!(batch.tickets, [created]);
}

async fn an_external_id_is_trimmed_and_bounded(app: TestApp) {
    let trimmed = app.create_ticket(imported("padded", "  zd-1\t")).await;
    assert_eq!(trimmed.external_id, "zd-1");
    let longest = "x".repeat(255);
    assert_eq!(
        app.create_ticket(imported("longest", &longest))
            .await
            .external_id,
        longest
    );

    for (what, bad) in [
        ("256 characters", "x".repeat(256)),
        ("a control character", "zd\u{7}2".to_owned()),
        ("a line break inside", "zd\n2".to_owned()),
    ] {
        assert_invalid(
            app.tickets()
                .create_ticket(create_ticket_req(imported(what, &bad)))
                .await,
            "ticket.external_id",
        );
    }
    assert_eq!(app.ticket_count().await, 2, "no refused ticket was stored");
}

async fn a_taken_external_id_is_already_exists_and_writes_nothing(app: TestApp) {
    let first = app.create_ticket(imported("first", ZENDESK_ID)).await;
    let before = app.all_history().await;

    let status = assert_code(
        app.tickets()
            .create_ticket(create_ticket_req(imported("second", ZENDESK_ID)))
            .await,
        Code::AlreadyExists,
    );
    assert_external_id_taken(&status, ZENDESK_ID);
    // Trimming happens first, so padding does not make an id new.
    let padded = assert_code(
        app.tickets()
            .create_ticket(create_ticket_req(imported(
                "padded",
                &format!(" {ZENDESK_ID} "),
            )))
            .await,
        Code::AlreadyExists,
    );
    assert_external_id_taken(&padded, ZENDESK_ID);

    assert_eq!(
        app.list_all_tickets(ListTicketsRequest::default()).await,
        [first],
        "only the first ticket exists"
    );
    assert_eq!(app.all_history().await, before, "no event was recorded");

    // Archived tickets keep their ids taken: the id still names that ticket.
    let archived = app.create_ticket(imported("archived", "zd-9")).await;
    ok(app.tickets().archive_ticket(archive_req(archived.id)).await);
    let status = assert_code(
        app.tickets()
            .create_ticket(create_ticket_req(imported("again", "zd-9")))
            .await,
        Code::AlreadyExists,
    );
    assert_external_id_taken(&status, "zd-9");
}

async fn a_batch_reusing_an_external_id_is_refused_whole_naming_the_item(app: TestApp) {
    app.create_ticket(imported("already there", ZENDESK_ID))
        .await;
    let batch = |external_ids: &[&str]| BatchCreateTicketsRequest {
        requests: external_ids
            .iter()
            .enumerate()
            .map(|(index, id)| create_ticket_req(imported(&format!("item {index}"), id)))
            .collect(),
        ..Default::default()
    };

    // Taken by a stored ticket, and taken by an earlier item of the same batch.
    for (external_ids, index, taken) in [
        (&["zd-1", ZENDESK_ID, "zd-3"][..], 1, ZENDESK_ID),
        (&["zd-1", "zd-2", "zd-1"][..], 2, "zd-1"),
    ] {
        let status = assert_code(
            app.tickets()
                .batch_create_tickets(batch(external_ids))
                .await,
            Code::AlreadyExists,
        );
        assert!(
            status.message().starts_with(&format!("requests[{index}]")),
            "the message names the item: {:?}",
            status.message()
        );
        assert_external_id_taken(&status, taken);
        assert_eq!(
            app.ticket_count().await,
            1,
            "no item of the batch was stored"
        );
    }

    let created = app
        .batch_create_tickets(
            ["zd-1", "", "zd-3", ""]
                .iter()
                .map(|id| create_ticket_req(imported("fine", id)))
                .collect(),
        )
        .await;
    assert_eq!(
        created
            .iter()
            .map(|ticket| ticket.external_id.as_str())
            .collect::<Vec<_>>(),
        ["zd-1", "", "zd-3", ""]
    );
}

async fn concurrent_creates_of_one_external_id_let_one_win(app: TestApp) {
    let results = join_all((0..6).map(|n| {
        let mut client = app.tickets();
        let request = create_ticket_req(imported(&format!("racer {n}"), ZENDESK_ID));
        async move { client.create_ticket(request).await }
    }))
    .await;
    assert_one_create_wins(&results);
    for status in results.iter().filter_map(|result| result.as_ref().err()) {
        // The losers on PostgreSQL pass the check before the winner commits: the unique index answers them.
        assert_external_id_taken(status, ZENDESK_ID);
    }
    assert_eq!(app.ticket_count().await, 1);
}

async fn any_number_of_tickets_have_no_external_id(app: TestApp) {
    let none = app.create_tickets(5).await;
    let blank = app.create_ticket(imported("blank", "   ")).await;
    for ticket in none.iter().chain([&blank]) {
        assert_eq!(ticket.external_id, "", "ticket {}", ticket.id);
    }
    assert_eq!(app.ticket_count().await, 6);
}

async fn updates_never_change_an_external_id(app: TestApp) {
    let created = app.create_ticket(imported("imported", ZENDESK_ID)).await;
    let plain = app.create_ticket(ticket("native")).await;

    // A mask naming it is refused, whatever the value.
    for (id, value) in [
        (created.id, "zd-other"),
        (created.id, ZENDESK_ID),
        (plain.id, "zd-new"),
    ] {
        let status = assert_invalid(
            app.tickets()
                .update_ticket(update_ticket_req(
                    Ticket {
                        id,
                        external_id: value.to_owned(),
                        ..Default::default()
                    },
                    &["external_id"],
                ))
                .await,
            "update_mask",
        );
        assert!(
            status.message().contains("only be set on create"),
            "{:?}",
            status.message()
        );
    }

    // Without a mask, sending back the ticket as read changes what changed and keeps the id.
    let updated = app
        .update_ticket(
            Ticket {
                subject: "imported, renamed".to_owned(),
                ..created.clone()
            },
            &[],
        )
        .await;
    assert_eq!(
        (updated.subject.as_str(), updated.external_id.as_str()),
        ("imported, renamed", ZENDESK_ID)
    );
    // A different one is refused, naming the field; so is setting one on a ticket that has none.
    for (id, value) in [(created.id, "zd-other"), (plain.id, "zd-new")] {
        assert_invalid(
            app.tickets()
                .update_ticket(UpdateTicketRequest {
                    ticket: Some(Ticket {
                        id,
                        subject: "changed".to_owned(),
                        external_id: value.to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await,
            "ticket.external_id",
        );
    }
    assert_eq!(app.get_ticket(created.id).await, updated, "nothing changed");
    assert_eq!(app.get_ticket(plain.id).await, plain, "nothing changed");
}

async fn searches_find_tickets_by_external_id(app: TestApp) {
    let a = app.create_ticket(imported("a", "zd-1")).await.id;
    let b = app.create_ticket(imported("b", "zd-2")).await.id;
    let none = app.create_ticket(ticket("native")).await.id;

    let search = |filter| app.search_ids(vec![filter]);
    assert_eq!(
        search(filter("external_id", FilterOperator::Eq, "zd-2")).await,
        [b]
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::Eq, " zd-1 ")).await,
        [a],
        "values are trimmed like the ids themselves"
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::Neq, "zd-2")).await,
        [a, none],
        "a ticket without one is not zd-2 either"
    );
    assert_eq!(
        search(filter_in(
            "external_id",
            FilterOperator::In,
            &["zd-1", "zd-2", "zd-9"]
        ))
        .await,
        [a, b]
    );
    assert_eq!(
        search(filter_in("external_id", FilterOperator::NotIn, &["zd-1"])).await,
        [b, none]
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::HasProperty, "")).await,
        [a, b]
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::NotHasProperty, "")).await,
        [none]
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::ContainsToken, "ZD")).await,
        [a, b],
        "zd-1 holds the words zd and 1"
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::NotContainsToken, "1")).await,
        [b, none]
    );
    // "" means none, as for the other text fields.
    assert_eq!(
        search(filter("external_id", FilterOperator::Eq, "")).await,
        [none]
    );
    assert_eq!(
        search(filter("external_id", FilterOperator::Neq, "")).await,
        [a, b]
    );
    assert_eq!(
        search(filter_in("external_id", FilterOperator::In, &["", "zd-2"])).await,
        [b, none]
    );
    assert_eq!(
        search(filter_in(
            "external_id",
            FilterOperator::NotIn,
            &["", "zd-2"]
        ))
        .await,
        [a]
    );
    assert_invalid(
        app.tickets()
            .search_tickets(SearchTicketsRequest {
                filter_groups: vec![ticketd::proto::FilterGroup {
                    filters: vec![filter("external_id", FilterOperator::Gt, "zd-1")],
                }],
                ..Default::default()
            })
            .await,
        "filter_groups[0].filters[0].operator",
    );
}

async fn history_records_the_external_id_at_creation(app: TestApp) {
    let created = app.create_ticket(imported("imported", ZENDESK_ID)).await;
    app.update_ticket(subject_change(created.id, "renamed"), &["subject"])
        .await;

    let history = app.history(created.id).await;
    assert_eq!(
        kinds(&history),
        [TicketEventKind::Created, TicketEventKind::Updated]
    );
    let change = change_of(&history[0], "external_id");
    assert_eq!(
        (change.old_value.as_str(), change.new_value.as_str()),
        ("", ZENDESK_ID)
    );
    assert_eq!(changed_fields(&history[1]), ["subject"]);

    let native = app.create_ticket(ticket("native")).await;
    assert!(
        !changed_fields(&app.history(native.id).await[0]).contains(&"external_id"),
        "no external id, no change"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------------------------------

/// The token of a customer (of [`ORG`]) whose portal shows its own tickets and lists `visible` fields.
async fn customer_of_portal(app: &TestApp, visible: &[&str]) -> String {
    let portal = app
        .create_portal(Portal {
            visible_properties: strings(visible),
            ..portal(&format!("showing {visible:?}"))
        })
        .await;
    customer_token(CUSTOMER, ORG, portal.id)
}

/// A ticket the customer requested, imported with [`ZENDESK_ID`].
async fn customers_imported_ticket(app: &TestApp) -> Ticket {
    app.create_ticket(Ticket {
        requester_id: CUSTOMER.to_owned(),
        organization_id: ORG.to_owned(),
        stage_id: 1,
        ..imported("imported for the customer", ZENDESK_ID)
    })
    .await
}

async fn a_portal_not_listing_external_id_hides_it_everywhere(app: TestApp) {
    let mut customer = app.tickets_as(&customer_of_portal(&app, &["stage_id"]).await);
    // An event before ours, so the stream below can resume from a cursor above zero (zero means "from now").
    app.create_ticket(ticket("someone else's")).await;
    let full = customers_imported_ticket(&app).await;

    let got = ok(customer.get_ticket(GetTicketRequest { id: full.id }).await);
    assert_eq!(got.external_id, "", "GetTicket");
    assert_eq!(
        got,
        Ticket {
            external_id: String::new(),
            requester_id: String::new(),
            organization_id: String::new(),
            ..full.clone()
        },
        "only the hidden fields went out empty"
    );
    let batch = ok(customer
        .batch_get_tickets(BatchGetTicketsRequest { ids: vec![full.id] })
        .await);
    let listed = every_ticket(&customer, ListTicketsRequest::default()).await;
    let found = every_match(
        &customer,
        SearchTicketsRequest {
            query: "imported".to_owned(),
            ..Default::default()
        },
    )
    .await;
    for (what, tickets) in [
        ("BatchGetTickets", &batch.tickets),
        ("ListTickets", &listed),
        ("SearchTickets", &found),
    ] {
        assert_eq!(ids(tickets), [full.id], "{what}");
        assert_eq!(tickets[0].external_id, "", "{what}");
    }

    let history = every_event(
        &customer,
        ticketd::proto::ListTicketHistoryRequest {
            ticket_id: full.id,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(kinds(&history), [TicketEventKind::Created]);
    assert!(
        !changed_fields(&history[0]).contains(&"external_id"),
        "history: {:?}",
        history[0].changes
    );
    assert!(
        changed_fields(&history[0]).contains(&"stage_id"),
        "listed fields still show"
    );

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
    let event = next_message(&mut stream, "the creation, replayed").await;
    assert_eq!(event.event_id, history[0].event_id);
    assert!(
        !changed_fields(&event).contains(&"external_id"),
        "stream: {:?}",
        event.changes
    );
    assert_eq!(
        event.ticket.expect("a snapshot").external_id,
        "",
        "stream snapshot"
    );

    // Filtering on it would reveal it one query at a time.
    for filter in [
        filter("external_id", FilterOperator::Eq, ZENDESK_ID),
        filter("external_id", FilterOperator::HasProperty, ""),
    ] {
        assert_field_denied(
            customer
                .search_tickets(SearchTicketsRequest {
                    filter_groups: vec![ticketd::proto::FilterGroup {
                        filters: vec![filter],
                    }],
                    ..Default::default()
                })
                .await,
            "filter_groups[0].filters[0].property",
        );
    }
}

async fn a_portal_listing_external_id_shows_it_but_never_lets_customers_set_it(app: TestApp) {
    let mut customer = app.tickets_as(&customer_of_portal(&app, &["external_id"]).await);
    let full = customers_imported_ticket(&app).await;

    let got = ok(customer.get_ticket(GetTicketRequest { id: full.id }).await);
    assert_eq!(got.external_id, ZENDESK_ID);
    let found = every_match(
        &customer,
        SearchTicketsRequest {
            filter_groups: vec![ticketd::proto::FilterGroup {
                filters: vec![filter("external_id", FilterOperator::Eq, ZENDESK_ID)],
            }],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&found), [full.id]);
    assert_eq!(found[0].external_id, ZENDESK_ID);
    let history = every_event(
        &customer,
        ticketd::proto::ListTicketHistoryRequest {
            ticket_id: full.id,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(change_of(&history[0], "external_id").new_value, ZENDESK_ID);

    // Shown, never editable: not on create, and a portal cannot make it so.
    assert_field_denied(
        customer
            .create_ticket(create_ticket_req(imported("mine", "zd-mine")))
            .await,
        "ticket.external_id",
    );
    assert_invalid(
        app.portals()
            .create_portal(create_portal_req(Portal {
                visible_properties: strings(&["external_id"]),
                editable_properties: strings(&["external_id"]),
                ..portal("editable external id")
            }))
            .await,
        "portal.editable_properties[0]",
    );
}

async fn a_card_showing_the_external_id_needs_a_portal_listing_it(app: TestApp) {
    let full = customers_imported_ticket(&app).await;
    let template = app
        .create_card_template(ticketd::proto::CreateCardTemplateRequest {
            bindings: properties(&[("ticketnumber", "external_id")]),
            ..card_template_req("external id")
        })
        .await;
    let card = app
        .send_card(send_card_req(template.id, full.id, CARD_GROUP))
        .await;
    assert!(
        app.render_card(card.id)
            .await
            .texts
            .contains(&ZENDESK_ID.to_owned()),
        "the desk's card shows the id"
    );

    let hidden = customer_of_portal(&app, &[]).await;
    assert_field_denied(
        app.cards_as(&hidden)
            .get_card(GetCardRequest { card_id: card.id })
            .await,
        "card_id",
    );
    let shown = customer_of_portal(&app, &["external_id"]).await;
    ok(app
        .cards_as(&shown)
        .get_card(GetCardRequest { card_id: card.id })
        .await);
}
