//! Customers and portals: the acceptance matrix of issue 5.
//!
//! Every test builds the same world ([`world::setup`]): organization `org-a` (customers alice and amy, and
//! carol, a member who never signs in), organization `org-b` (customer bob, member dave), outsiders of `org-z`,
//! the custom properties `region` (customer visible and editable) and `internal_score` (agent only), and two
//! portals:
//!
//! | portal | rules                                    | types    | visible                    | editable         | time |
//! |--------|------------------------------------------|----------|----------------------------|------------------|------|
//! | P1     | requested + organization                 | all      | stage_id, priority, region | priority, region | yes  |
//! | P2     | requested + followed + followed projects | question | stage_id                   | –                | no   |
//!
//! An agent creates tickets requested by each customer and by other members, one per organization with hidden
//! values (assignee, tags, internal score, external id), both ticket types, tickets of `proj-1` (followed by
//! `org-a` as an organization) and `proj-2` (followed by bob as a user), tickets alice and bob follow one by
//! one; it comments publicly and internally, links and unlinks a contact, changes hidden and visible fields and
//! logs time.
//!
//! What each customer should see is computed in [`world`] from the rules ([`World::shows`], [`World::redact`],
//! [`World::customer_event`]) and checked against the matrix written out by hand ([`MATRIX`]). The tests then
//! prove, for customers of both organizations under both portals:
//!
//! 1. reads (Get, BatchGet, List, Search) return exactly the visible tickets; an invisible ticket is NOT_FOUND
//!    exactly like a missing one;
//! 2. hidden fields arrive empty everywhere (reads, write responses, history, stream snapshots and changes);
//! 3. comments: internal ones are never listed, customers add public ones only;
//! 4. history leaves out internal comments, association events and changes of hidden fields;
//! 5. WatchTickets (replayed and live) carries only visible events, redacted; filters on hidden fields are
//!    refused;
//! 6. customer writes: create as requester of its own organization, update only editable fields, no archive;
//! 7. followers: requesters follow automatically, the follower rules, customers follow only for themselves;
//! 8. time entries: logged only where the portal allows it, listed and deleted only by their author;
//! 9. portal administration: validation, etags, deletion, and changes applying on the customer's next call;
//! 10. chat cards: readable only for visible tickets and only when every binding is a visible field.

mod cards;
mod comments;
mod fail_closed;
mod followers;
mod history;
mod portal_changes;
mod portals;
mod reads;
mod scope_model;
mod streams;
mod time_entries;
mod world;
mod writes;

use std::{collections::BTreeMap, fmt::Debug};

use ticketd::proto::{
    Card, CardTemplate, Comment, CreateCardTemplateRequest, FilterGroup, ListCommentsRequest,
    ListFollowersRequest, ListTicketHistoryRequest, ListTicketsRequest, ListTimeEntriesRequest,
    SearchTicketsRequest, SendCardRequest, Ticket, TicketEvent, TimeEntry,
};
use tonic::{Code, Response, Status};
use tonic_types::StatusExt;

use crate::support::*;
use world::*;

// ---------------------------------------------------------------------------------------------------------------
// Reads by one client (a customer's or the agent's), following every page
// ---------------------------------------------------------------------------------------------------------------

/// Every ticket as the agent sees it, archived ones included, by id.
async fn agent_view(app: &TestApp) -> BTreeMap<i64, Ticket> {
    app.list_all_tickets(ListTicketsRequest {
        page_size: 500,
        show_archived: true,
        ..Default::default()
    })
    .await
    .into_iter()
    .map(|ticket| (ticket.id, ticket))
    .collect()
}

/// Every ticket a client lists, `page_size` at a time.
async fn list_all_as(client: &Tickets, page_size: i32) -> Vec<Ticket> {
    let request = ListTicketsRequest {
        page_size,
        ..Default::default()
    };
    every_ticket(client, request).await
}

/// A search with one group of filters, two tickets a page.
fn search_req(filters: Vec<ticketd::proto::Filter>) -> SearchTicketsRequest {
    SearchTicketsRequest {
        filter_groups: vec![FilterGroup { filters }],
        page_size: 2,
        ..Default::default()
    }
}

/// A ticket's history as a client reads it, `page_size` events at a time.
async fn history_as(client: &Tickets, ticket_id: i64, page_size: i32) -> Vec<TicketEvent> {
    let request = ListTicketHistoryRequest {
        ticket_id,
        page_size,
        ..Default::default()
    };
    every_event(client, request).await
}

/// A ticket's comments as a client reads them, `page_size` at a time.
async fn comments_as(client: &Tickets, ticket_id: i64, page_size: i32) -> Vec<Comment> {
    let request = ListCommentsRequest {
        ticket_id,
        page_size,
        ..Default::default()
    };
    every_comment(client, request).await
}

/// The followers of a ticket a client lists, one a page.
async fn followers_as(client: &Tickets, ticket_id: i64) -> Vec<String> {
    let request = ListFollowersRequest {
        ticket_id,
        page_size: 1,
        ..Default::default()
    };
    let all = every_follower(client, request).await;
    assert!(all.iter().all(|f| f.ticket_id == ticket_id));
    all.into_iter().map(|f| f.follower_id).collect()
}

/// The time entries of a ticket a client lists, one a page.
async fn time_entries_as(client: &Tickets, ticket_id: i64) -> Vec<TimeEntry> {
    let request = ListTimeEntriesRequest {
        ticket_id,
        page_size: 1,
        ..Default::default()
    };
    every_time_entry(client, request).await
}

/// The ids of time entries, in their order.
fn entry_ids(entries: &[TimeEntry]) -> Vec<i64> {
    entries.iter().map(|entry| entry.id).collect()
}

/// The ids of comments, in their order.
fn comment_ids(comments: &[Comment]) -> Vec<i64> {
    comments.iter().map(|comment| comment.id).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Status assertions
// ---------------------------------------------------------------------------------------------------------------

/// PERMISSION_DENIED from the access policy: the method is not open to customers at all.
#[track_caller]
fn assert_not_for_customers<T: Debug>(result: Result<Response<T>, Status>, method: &str) {
    assert_method_denied(result, method, "customers");
}

/// NOT_FOUND for `resource` `id`: the message and ResourceInfo name it.
#[track_caller]
fn assert_not_found<T: Debug>(
    result: Result<Response<T>, Status>,
    resource: &str,
    id: i64,
) -> Status {
    let status = assert_code(result, Code::NotFound);
    assert_eq!(status.message(), format!("{resource} {id} not found"));
    let info = status
        .get_details_resource_info()
        .unwrap_or_else(|| panic!("NOT_FOUND {:?} carries no ResourceInfo", status.message()));
    assert_eq!(info.resource_type, resource);
    assert_eq!(info.resource_name, id.to_string());
    status
}

/// Panics unless two NOT_FOUND answers (for `id_a` and `id_b`) are the same but for the id.
#[track_caller]
fn assert_same_answer(a: &Status, id_a: i64, b: &Status, id_b: i64, what: &str) {
    assert_eq!(a.code(), b.code(), "{what}: codes differ");
    assert_eq!(
        a.message().replace(&id_a.to_string(), &id_b.to_string()),
        b.message(),
        "{what}: messages differ beyond the id"
    );
    let error_info = |status: &Status| {
        status
            .get_details_error_info()
            .map(|info| (info.reason, info.domain, info.metadata))
    };
    assert_eq!(error_info(a), error_info(b), "{what}: ErrorInfo differs");
    let resource = |status: &Status| {
        status
            .get_details_resource_info()
            .map(|info| (info.resource_type, info.owner, info.description))
    };
    assert_eq!(
        resource(a).map(|(t, o, d)| (t, o, d.replace(&id_a.to_string(), &id_b.to_string()))),
        resource(b),
        "{what}: ResourceInfo differs beyond the id"
    );
}

/// The status of a call that must fail, whatever its code.
fn status_of<T>(result: Result<Response<T>, Status>) -> Status {
    match result {
        Ok(_) => panic!("expected an error, got OK"),
        Err(status) => status,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Writes the tests watch for, and cards
// ---------------------------------------------------------------------------------------------------------------

/// Sets a ticket's subject as the agent: the marker tests wait for on streams.
async fn set_subject(app: &TestApp, ticket_id: i64, subject: &str) -> Ticket {
    ok(agent(app)
        .update_ticket(update_ticket_req(
            subject_change(ticket_id, subject),
            &["subject"],
        ))
        .await)
}

/// The customer line of the cards these tests send.
const ALICE_CARD_NAME: &str = "NAME: Alice";

/// A template of the Kaizala fixture's view with `bindings` instead of the default ones.
async fn card_template(app: &TestApp, name: &str, bindings: &[(&str, &str)]) -> CardTemplate {
    app.create_card_template(CreateCardTemplateRequest {
        bindings: properties(bindings),
        ..card_template_req(name)
    })
    .await
}

/// A SendCard request for a card showing [`ALICE_CARD_NAME`].
fn alice_card_req(template_id: i64, ticket_id: i64) -> SendCardRequest {
    SendCardRequest {
        properties: properties(&[("customername", ALICE_CARD_NAME)]),
        ..send_card_req(template_id, ticket_id, CARD_GROUP)
    }
}

/// Sends a card of `template_id` for a ticket as the test admin, showing [`ALICE_CARD_NAME`].
async fn send_alice_card(app: &TestApp, template_id: i64, ticket_id: i64) -> Card {
    app.send_card(alice_card_req(template_id, ticket_id)).await
}

/// A template showing only fields every portal here shows: the subject and the stage's label.
async fn visible_card_template(app: &TestApp) -> CardTemplate {
    card_template(
        app,
        "subject and stage",
        &[("ticketnumber", "subject"), ("ticketstatus", "stage.label")],
    )
    .await
}
