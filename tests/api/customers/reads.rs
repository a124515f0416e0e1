//! Customer reads (items 1 and 2 of the list in `customers`): Get, BatchGet, List and Search return exactly the
//! tickets the portal shows, an invisible ticket is NOT_FOUND exactly like a missing one, hidden fields arrive
//! empty, and searches filter only on visible fields.

use ticketd::proto::{
    BatchGetTicketsRequest, CommentVisibility, FilterGroup, FilterOperator, FollowTicketRequest,
    GetTicketRequest, ListCommentsRequest, ListFollowersRequest, ListTicketHistoryRequest,
    ListTimeEntriesRequest, Priority, SearchTicketsRequest, Ticket,
};
use tonic::{Code, Status};

use super::*;

both_databases!(
    each_customer_reads_exactly_the_tickets_its_portal_shows,
    an_invisible_ticket_is_not_found_exactly_like_a_missing_one,
    hidden_fields_never_leave_in_ticket_reads,
    searches_filter_only_on_visible_fields,
);

async fn each_customer_reads_exactly_the_tickets_its_portal_shows(app: TestApp) {
    let world = setup(&app).await;
    let tickets = agent_view(&app).await;
    for &(customer, which, keys) in MATRIX {
        let what = format!("{} ({}) through {which:?}", customer.sub, customer.org);
        let portal = world.portal(which);
        let expected = world.expected_ids(&tickets, customer, portal);
        assert_eq!(
            expected,
            world.ids_of(keys),
            "{what}: the rules as modelled here agree with the matrix written by hand"
        );
        let mut client = world.tickets_as(&app, customer, which);

        let listed = list_all_as(&client, 2).await;
        assert_eq!(ids(&listed), expected, "{what}: ListTickets");
        let searched = every_match(
            &client,
            SearchTicketsRequest {
                page_size: 2,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids(&searched), expected, "{what}: SearchTickets");
        let by_words = every_match(
            &client,
            SearchTicketsRequest {
                query: "content".to_owned(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            ids(&by_words),
            expected,
            "{what}: SearchTickets by a word every ticket has"
        );
        let asked: Vec<i64> = expected.iter().rev().copied().collect();
        let batch = ok(client
            .batch_get_tickets(BatchGetTicketsRequest { ids: asked.clone() })
            .await);
        assert_eq!(
            ids(&batch.tickets),
            asked,
            "{what}: BatchGetTickets, in the order asked"
        );

        for &id in tickets.keys() {
            let result = client.get_ticket(GetTicketRequest { id }).await;
            if expected.contains(&id) {
                assert_eq!(ok(result).id, id, "{what}: GetTicket {}", world.key_of(id));
            } else {
                assert_not_found(result, "ticket", id);
            }
        }

        // Not one ticket of the other organization, whatever the read.
        let other_org = if customer.org == ORG_A { ORG_B } else { ORG_A };
        for read in [&listed, &searched, &by_words, &batch.tickets] {
            assert!(
                read.iter()
                    .all(|ticket| tickets[&ticket.id].organization_id != other_org),
                "{what}: a ticket of {other_org} was returned"
            );
        }
    }
}

async fn an_invisible_ticket_is_not_found_exactly_like_a_missing_one(app: TestApp) {
    let world = setup(&app).await;
    let missing = world.ids.values().max().copied().unwrap_or_default() + 1_000;
    // (customer, portal, a ticket it sees, tickets it does not see and why)
    let cases = [
        (
            ALICE,
            Which::P1,
            "a-alice-q",
            ["b-bob-q", "z-proj1-q", "z-alice-follows-q"],
        ),
        (
            BOB,
            Which::P1,
            "b-bob-q",
            ["a-alice-q", "a-secret-i", "z-proj2-q"],
        ),
        (
            ALICE,
            Which::P2,
            "a-alice-q",
            ["a-alice-i", "a-amy-q", "z-proj1-i"],
        ),
        (
            BOB,
            Which::P2,
            "b-bob-q",
            ["b-secret-q", "z-proj1-q", "z-alice-follows-q"],
        ),
    ];
    for (customer, which, seen, unseen) in cases {
        let mut client = world.tickets_as(&app, customer, which);
        let seen = world.id(seen);
        let missing_status = assert_not_found(
            client.get_ticket(GetTicketRequest { id: missing }).await,
            "ticket",
            missing,
        );
        for key in unseen {
            let id = world.id(key);
            let what = format!("{} through {which:?}, {key}", customer.sub);
            let status = assert_not_found(
                client.get_ticket(GetTicketRequest { id }).await,
                "ticket",
                id,
            );
            assert_same_answer(
                &status,
                id,
                &missing_status,
                missing,
                &format!("{what}: GetTicket"),
            );

            // Every per-ticket call answers the same way for the invisible and the missing id.
            let mut pairs: Vec<(Status, Status)> = Vec::new();
            let batch = |probe: i64| BatchGetTicketsRequest {
                ids: vec![seen, probe],
            };
            pairs.push((
                status_of(client.batch_get_tickets(batch(id)).await),
                status_of(client.batch_get_tickets(batch(missing)).await),
            ));
            let update =
                |probe: i64| update_ticket_req(subject_change(probe, "probe"), &["subject"]);
            pairs.push((
                status_of(client.update_ticket(update(id)).await),
                status_of(client.update_ticket(update(missing)).await),
            ));
            pairs.push((
                status_of(
                    client
                        .add_comment(comment_req(id, "probe", CommentVisibility::Public))
                        .await,
                ),
                status_of(
                    client
                        .add_comment(comment_req(missing, "probe", CommentVisibility::Public))
                        .await,
                ),
            ));
            let comments = |ticket_id: i64| ListCommentsRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_comments(comments(id)).await),
                status_of(client.list_comments(comments(missing)).await),
            ));
            let history = |ticket_id: i64| ListTicketHistoryRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_ticket_history(history(id)).await),
                status_of(client.list_ticket_history(history(missing)).await),
            ));
            let followers = |ticket_id: i64| ListFollowersRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_followers(followers(id)).await),
                status_of(client.list_followers(followers(missing)).await),
            ));
            let follow = |ticket_id: i64| FollowTicketRequest {
                ticket_id,
                follower_id: String::new(),
            };
            pairs.push((
                status_of(client.follow_ticket(follow(id)).await),
                status_of(client.follow_ticket(follow(missing)).await),
            ));
            let entries = |ticket_id: i64| ListTimeEntriesRequest {
                ticket_id,
                ..Default::default()
            };
            pairs.push((
                status_of(client.list_time_entries(entries(id)).await),
                status_of(client.list_time_entries(entries(missing)).await),
            ));
            pairs.push((
                status_of(client.log_time(log_time_req(id, 10, "2024-05-02")).await),
                status_of(
                    client
                        .log_time(log_time_req(missing, 10, "2024-05-02"))
                        .await,
                ),
            ));
            for (index, (invisible, absent)) in pairs.iter().enumerate() {
                assert_eq!(
                    invisible.code(),
                    Code::NotFound,
                    "{what}: call #{index} must be NOT_FOUND, got {:?}",
                    invisible.message()
                );
                assert_same_answer(
                    invisible,
                    id,
                    absent,
                    missing,
                    &format!("{what}: call #{index}"),
                );
            }
            // BatchGet names the failing index.
            assert_eq!(
                pairs[0].0.message(),
                format!("ids[1]: ticket {id} not found"),
                "{what}: BatchGetTickets names the index"
            );
        }
    }
}

async fn hidden_fields_never_leave_in_ticket_reads(app: TestApp) {
    let world = setup(&app).await;
    let tickets = agent_view(&app).await;
    // The fixture really has hidden values to leak.
    let secret = &tickets[&world.id("a-secret-i")];
    assert_eq!(secret.assignee_id, AGENT);
    assert_eq!(secret.tags, strings(&["escalated", "vip"]));
    assert_eq!(secret.properties["internal_score"], "42");

    for &(customer, which, _) in MATRIX {
        let what = format!("{} through {which:?}", customer.sub);
        let portal = world.portal(which);
        let mut client = world.tickets_as(&app, customer, which);
        let expected_ids = world.expected_ids(&tickets, customer, portal);
        let expected: Vec<Ticket> = expected_ids
            .iter()
            .map(|id| world.redact(portal, &tickets[id]))
            .collect();

        let mut reads: Vec<(&str, Vec<Ticket>)> = vec![
            ("ListTickets", list_all_as(&client, 3).await),
            (
                "SearchTickets",
                every_match(&client, SearchTicketsRequest::default()).await,
            ),
            (
                "BatchGetTickets",
                ok(client
                    .batch_get_tickets(BatchGetTicketsRequest {
                        ids: expected_ids.clone(),
                    })
                    .await)
                .tickets,
            ),
        ];
        let mut got = Vec::new();
        for &id in &expected_ids {
            got.push(ok(client.get_ticket(GetTicketRequest { id }).await));
        }
        reads.push(("GetTicket", got));

        for (read, returned) in &reads {
            for ticket in returned {
                world.assert_no_hidden_value(portal, ticket, &format!("{what}: {read}"));
            }
            assert_eq!(
                returned, &expected,
                "{what}: {read} returns each ticket with exactly the hidden fields blanked"
            );
        }
    }

    // What the portals list does arrive.
    let a_secret = world.id("a-secret-i");
    let p1_view = ok(world
        .tickets_as(&app, AMY, Which::P1)
        .get_ticket(GetTicketRequest { id: a_secret })
        .await);
    assert_eq!(p1_view.priority(), Priority::High);
    assert_eq!(p1_view.stage_id, tickets[&a_secret].stage_id);
    assert_ne!(p1_view.stage_id, 0);
    assert_eq!(p1_view.properties, properties(&[("region", "emea")]));
    assert_eq!(p1_view.subject, "Server outage");
    assert_eq!(p1_view.content, "content of a-secret-i");
    assert_eq!(p1_view.etag, tickets[&a_secret].etag);
    let p2_view = ok(world
        .tickets_as(&app, ALICE, Which::P2)
        .get_ticket(GetTicketRequest {
            id: world.id("a-alice-q"),
        })
        .await);
    assert_ne!(p2_view.stage_id, 0, "P2 lists stage_id");
    assert_eq!(p2_view.priority, 0, "P2 does not list priority");
    assert!(p2_view.properties.is_empty(), "P2 lists no property");
}

async fn searches_filter_only_on_visible_fields(app: TestApp) {
    let world = setup(&app).await;
    let mut alice = world.tickets_as(&app, ALICE, Which::P1);

    // Filters on what P1 shows work, inside the customer's tickets only (b-secret-q is URGENT too).
    let emea = every_match(
        &alice,
        search_req(vec![filter("region", FilterOperator::Eq, "emea")]),
    )
    .await;
    assert_eq!(ids(&emea), world.ids_of(&["a-secret-i"]));
    let apac = every_match(
        &alice,
        search_req(vec![filter("region", FilterOperator::Eq, "apac")]),
    )
    .await;
    assert_eq!(
        ids(&apac),
        world.ids_of(&["a-alice-q"]),
        "b-secret-q (apac) is org-b's"
    );
    let urgent_or_high = every_match(
        &alice,
        search_req(vec![filter_in(
            "priority",
            FilterOperator::In,
            &["HIGH", "URGENT"],
        )]),
    )
    .await;
    assert_eq!(
        ids(&urgent_or_high),
        world.ids_of(&["a-alice-q", "a-secret-i"])
    );
    let by_stage = every_match(
        &alice,
        search_req(vec![filter(
            "stage_id",
            FilterOperator::Eq,
            &world.stages[1].id.to_string(),
        )]),
    )
    .await;
    assert_eq!(ids(&by_stage), world.ids_of(&["a-alice-q"]));
    let by_id = every_match(
        &alice,
        search_req(vec![filter(
            "id",
            FilterOperator::Gte,
            &world.id("a-alice-q").to_string(),
        )]),
    )
    .await;
    assert_eq!(ids(&by_id), world.ids_of(ORG_A_TICKETS));
    for ticket in emea.iter().chain(&apac).chain(&urgent_or_high) {
        world.assert_no_hidden_value(&world.p1, ticket, "P1 search");
    }

    // Filters on hidden fields are refused, whatever they would match: nothing can be probed.
    let hidden_in_p1 = [
        ("assignee_id", FilterOperator::Eq, AGENT),
        ("tags", FilterOperator::ContainsToken, "vip"),
        ("requester_id", FilterOperator::Eq, "alice"),
        ("organization_id", FilterOperator::Eq, ORG_A),
        ("internal_score", FilterOperator::Gt, "1"),
        ("project_id", FilterOperator::Eq, PROJ_1),
        ("ticket_type", FilterOperator::Eq, QUESTION),
        ("pipeline_id", FilterOperator::Eq, "0"),
        ("no_such_property", FilterOperator::Eq, "x"),
    ];
    for (property, operator, value) in hidden_in_p1 {
        assert_field_denied(
            alice
                .search_tickets(search_req(vec![filter(property, operator, value)]))
                .await,
            "filter_groups[0].filters[0].property",
        );
    }
    // The error names the offending filter of the offending group.
    let request = SearchTicketsRequest {
        filter_groups: vec![
            FilterGroup {
                filters: vec![filter("priority", FilterOperator::Eq, "HIGH")],
            },
            FilterGroup {
                filters: vec![
                    filter("region", FilterOperator::Eq, "emea"),
                    filter("assignee_id", FilterOperator::HasProperty, ""),
                ],
            },
        ],
        ..Default::default()
    };
    assert_field_denied(
        alice.search_tickets(request).await,
        "filter_groups[1].filters[1].property",
    );

    // P2 shows neither priority nor region.
    let mut bob_p2 = world.tickets_as(&app, BOB, Which::P2);
    for property in ["priority", "region", "assignee_id"] {
        assert_field_denied(
            bob_p2
                .search_tickets(search_req(vec![filter(
                    property,
                    FilterOperator::HasProperty,
                    "",
                )]))
                .await,
            "filter_groups[0].filters[0].property",
        );
    }
    let bob_stage = every_match(
        &bob_p2,
        search_req(vec![filter(
            "stage_id",
            FilterOperator::Eq,
            &world.stages[0].id.to_string(),
        )]),
    )
    .await;
    assert_eq!(
        ids(&bob_stage),
        world.ids_of(&["b-bob-q", "z-proj2-q", "z-bob-follows-q"])
    );
}
