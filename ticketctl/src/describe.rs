//! `describe ticket ID`: everything about one ticket, for a person, in kubectl's `describe` layout.

use std::collections::VecDeque;

use ticketd::proto::{
    GetTicketRequest, ListAssociationsRequest, ListCardsRequest, ListTicketHistoryRequest,
    TicketEvent,
};

use crate::{
    client::Server,
    error::CliError,
    fields::priority_label,
    output::outln,
    output::{Colour, paint, stdout_colour, timestamp},
    tickets::Labels,
    watch::event_line,
};

/// How many of the latest history events are shown.
const HISTORY_SHOWN: usize = 20;
/// Page size for the ticket's associations, cards and history.
const PAGE: i32 = 100;

/// Prints the ticket, its properties, associations, cards and last events.
pub async fn ticket(server: &Server, id: i64) -> Result<(), CliError> {
    let colour = stdout_colour();
    let mut tickets = server.tickets();
    let ticket = tickets
        .get_ticket(GetTicketRequest { id })
        .await?
        .into_inner();
    let labels = Labels::load(server).await;
    let heading = |text: &str| paint(text, Colour::Bold, colour);
    let field = |name: &str, value: String| {
        // Padded before painting: escape codes would count towards the width.
        let line = format!("{}{value}", heading(&format!("{:<18}", format!("{name}:"))));
        outln!("{}", line.trim_end());
    };
    let with_id = |label: String, id: i64| {
        if label == id.to_string() {
            label
        } else {
            format!("{label} ({id})")
        }
    };

    field("ID", ticket.id.to_string());
    field("Subject", ticket.subject.clone());
    field("Priority", priority_label(ticket.priority).to_owned());
    field(
        "Pipeline",
        with_id(labels.pipeline(ticket.pipeline_id), ticket.pipeline_id),
    );
    field(
        "Stage",
        with_id(labels.stage(ticket.stage_id), ticket.stage_id),
    );
    field("Requester", ticket.requester_id.clone());
    field("Assignee", ticket.assignee_id.clone());
    field("Organization", ticket.organization_id.clone());
    field("Project", ticket.project_id.clone());
    field("Type", ticket.ticket_type.clone());
    field("Tags", ticket.tags.join(", "));
    field("External ID", ticket.external_id.clone());
    field("Created", timestamp(ticket.create_time.as_ref()));
    field("Updated", timestamp(ticket.update_time.as_ref()));
    field("Closed", timestamp(ticket.close_time.as_ref()));
    field(
        "Archived",
        if ticket.archived {
            format!("yes, {}", timestamp(ticket.archive_time.as_ref()))
        } else {
            "no".to_owned()
        },
    );
    field("Etag", ticket.etag.clone());
    if !ticket.content.is_empty() {
        outln!("{}", heading("Content:"));
        for line in ticket.content.lines() {
            outln!("  {line}");
        }
    }

    outln!("{}", heading("Properties:"));
    if ticket.properties.is_empty() {
        outln!("  <none>");
    }
    for (name, value) in &ticket.properties {
        outln!("  {name}={value}");
    }

    outln!("{}", heading("Associations:"));
    let mut associations = server.associations();
    let mut page_token = String::new();
    let mut any = false;
    loop {
        let page = associations
            .list_associations(ListAssociationsRequest {
                ticket_id: id,
                page_size: PAGE,
                page_token,
                ..ListAssociationsRequest::default()
            })
            .await?
            .into_inner();
        for association in page.associations {
            any = true;
            let target = association
                .to
                .map(|to| format!("{}/{}", to.object_type, to.object_id))
                .unwrap_or_default();
            let label = if association.label.is_empty() {
                String::new()
            } else {
                format!("  ({})", association.label)
            };
            outln!("  {target}{label}");
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if !any {
        outln!("  <none>");
    }

    outln!("{}", heading("Cards:"));
    let mut cards = server.cards();
    let mut page_token = String::new();
    let mut any = false;
    loop {
        let page = cards
            .list_cards(ListCardsRequest {
                ticket_id: id,
                page_size: PAGE,
                page_token,
            })
            .await?
            .into_inner();
        for card in page.cards {
            any = true;
            outln!(
                "  card/{}  template {}  group {}  version {}",
                card.id,
                card.template_id,
                card.group_id,
                card.version
            );
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if !any {
        outln!("  <none>");
    }

    // History is served oldest first: keep a window of the latest while paging through.
    let mut latest: VecDeque<TicketEvent> = VecDeque::with_capacity(HISTORY_SHOWN + 1);
    let mut page_token = String::new();
    loop {
        let page = tickets
            .list_ticket_history(ListTicketHistoryRequest {
                ticket_id: id,
                page_size: PAGE,
                page_token,
            })
            .await?
            .into_inner();
        for event in page.events {
            latest.push_back(event);
            if latest.len() > HISTORY_SHOWN {
                latest.pop_front();
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    outln!(
        "{}",
        heading(&format!("History (last {HISTORY_SHOWN}, oldest first):"))
    );
    if latest.is_empty() {
        outln!("  <none>");
    }
    for event in &latest {
        outln!("  {}", event_line(event, colour));
    }
    Ok(())
}
