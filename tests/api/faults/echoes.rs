//! Errors never echo a client's text without bound (issue 16, item 5): a status travels in HTTP/2 headers,
//! which clients refuse beyond 16 KiB and proxies turn into 5xx. Whatever a request holds, an error quotes at
//! most 100 characters of any one value and 1,000 characters in all.

use ticketd::proto::{
    FilterOperator, GetPropertyRequest, SearchTicketsRequest, Ticket, UpdateTicketRequest,
};
use tonic::{Code, Status};

use crate::support::*;

/// A megabyte of one character: far beyond every limit, and within the request size limit.
fn megabyte(character: char) -> String {
    std::iter::repeat_n(character, 1 << 20).collect()
}

/// At most this many bytes of message and of encoded details: the 1,000-character bound plus quoting.
const MAX_STATUS_BYTES: usize = 4 * 1024;

#[track_caller]
fn assert_bounded(status: &Status, what: &str) {
    assert_ne!(
        status.code(),
        Code::Internal,
        "{what}: {:?}",
        status.message()
    );
    assert!(
        status.message().len() <= MAX_STATUS_BYTES,
        "{what}: a {}-byte message",
        status.message().len()
    );
    assert!(
        status.details().len() <= MAX_STATUS_BYTES,
        "{what}: {} bytes of details",
        status.details().len()
    );
    assert!(
        !status.message().contains(&"x".repeat(101)),
        "{what}: more than 100 characters of the value echoed: {:?}",
        &status.message()[..200.min(status.message().len())]
    );
}

async fn huge_values_come_back_cut(app: TestApp) {
    let huge = megabyte('x');

    let unknown_property = app
        .tickets()
        .create_ticket(create_ticket_req(Ticket {
            properties: properties(&[(huge.as_str(), "value")]),
            ..ticket("a ticket with a huge property name")
        }))
        .await
        .expect_err("an undefined property");
    assert_bounded(
        &unknown_property,
        "an undefined property named by a megabyte",
    );

    let created = app.create_ticket(ticket("target")).await;
    let bad_mask = app
        .tickets()
        .update_ticket(UpdateTicketRequest {
            ticket: Some(subject_change(created.id, "new")),
            update_mask: mask(&[huge.as_str()]),
            ..Default::default()
        })
        .await
        .expect_err("an unknown mask path");
    assert_bounded(&bad_mask, "a megabyte update mask path");

    let bad_request_id = app
        .tickets()
        .create_ticket(ticket_with_request_id(&huge))
        .await
        .expect_err("an overlong request id");
    assert_bounded(&bad_request_id, "a megabyte request id");

    let unknown_filter = app
        .tickets()
        .search_tickets(SearchTicketsRequest {
            filter_groups: vec![ticketd::proto::FilterGroup {
                filters: vec![filter(&huge, FilterOperator::Eq, "1")],
            }],
            ..Default::default()
        })
        .await
        .expect_err("a filter on an unknown property");
    assert_bounded(
        &unknown_filter,
        "a filter on a property named by a megabyte",
    );

    let missing = app
        .properties()
        .get_property(GetPropertyRequest { name: huge.clone() })
        .await
        .expect_err("no such property");
    assert_bounded(&missing, "GetProperty of a megabyte name");

    // The connection survived every one of those answers.
    assert_eq!(app.get_ticket(created.id).await.subject, "target");
    app.shutdown().await;
}

fn ticket_with_request_id(request_id: &str) -> ticketd::proto::CreateTicketRequest {
    ticketd::proto::CreateTicketRequest {
        request_id: request_id.to_owned(),
        ..create_ticket_req(ticket("idempotent"))
    }
}

both_databases!(huge_values_come_back_cut);
