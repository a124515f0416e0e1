//! Request ids belong to the caller that sent them (issue 16, item 6; AIP-155): another caller's id is neither
//! replayed, refused nor even noticed, so ids cannot be probed or squatted across callers.

use ticketd::proto::{CreateTicketRequest, ListTicketsRequest};

use crate::support::*;

fn create_with_id(subject: &str, request_id: &str) -> CreateTicketRequest {
    CreateTicketRequest {
        request_id: request_id.to_owned(),
        ..create_ticket_req(ticket(subject))
    }
}

async fn two_callers_may_use_the_same_request_id(app: TestApp) {
    let shared = "ticket-1";
    let ann = app.tickets_as(&agent_token("ann"));
    let ben = app.tickets_as(&agent_token("ben"));

    let ann_first = ok(ann
        .clone()
        .create_ticket(create_with_id("ann's", shared))
        .await);
    // Another request under the same id, by someone else: a new request, not a reuse.
    let ben_first = ok(ben
        .clone()
        .create_ticket(create_with_id("ben's", shared))
        .await);
    assert_ne!(ann_first.id, ben_first.id);
    assert_eq!(ben_first.subject, "ben's");

    // Each caller's retry replays its own first answer.
    let ann_retry = ok(ann
        .clone()
        .create_ticket(create_with_id("ann's", shared))
        .await);
    let ben_retry = ok(ben
        .clone()
        .create_ticket(create_with_id("ben's", shared))
        .await);
    assert_eq!(ann_retry, ann_first);
    assert_eq!(ben_retry, ben_first);

    // Within one caller the id still names one request.
    assert_invalid(
        ann.clone()
            .create_ticket(create_with_id("ann's other", shared))
            .await,
        "request_id",
    );
    assert_eq!(
        ids(&app.list_all_tickets(ListTicketsRequest::default()).await).len(),
        2
    );
    app.shutdown().await;
}

/// A customer's `sub` is unique within its portal only: the same `sub` in two portals is two callers.
async fn customers_of_two_portals_with_the_same_sub_do_not_share_request_ids(app: TestApp) {
    let first_portal = app.create_portal(portal("first")).await;
    let second_portal = app.create_portal(portal("second")).await;
    let shared = "my-first-ticket";
    let in_first = app.tickets_as(&customer_token("carol", "org-c", first_portal.id));
    let in_second = app.tickets_as(&customer_token("carol", "org-c", second_portal.id));

    let first = ok(in_first
        .clone()
        .create_ticket(create_with_id("asked in the first portal", shared))
        .await);
    let second = ok(in_second
        .clone()
        .create_ticket(create_with_id("asked in the second portal", shared))
        .await);
    assert_ne!(first.id, second.id);
    assert_eq!(second.subject, "asked in the second portal");
    let replayed = ok(in_first
        .clone()
        .create_ticket(create_with_id("asked in the first portal", shared))
        .await);
    assert_eq!(replayed.id, first.id);
    app.shutdown().await;
}

both_databases!(
    two_callers_may_use_the_same_request_id,
    customers_of_two_portals_with_the_same_sub_do_not_share_request_ids,
);
