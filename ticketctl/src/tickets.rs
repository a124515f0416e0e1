//! Ticket commands: get, create, update, archive, restore, comment.

use std::collections::HashMap;

use ticketd::proto::{
    AddCommentRequest, ArchiveTicketRequest, CommentVisibility, CreateTicketRequest,
    GetTicketRequest, ListPipelinesRequest, ListTicketsRequest, Pipeline, RestoreTicketRequest,
    SearchTicketsRequest, Ticket, UpdateTicketRequest,
};

use crate::{
    cli::{ChangeOutput, CommentArgs, CreateTicket, Format, ListTickets, UpdateTicket},
    client::Server,
    error::CliError,
    fields::{parse_priority, priority_label, set_field, split_assignment},
    filter::{OrderBy, parse_filters},
    output::outln,
    output::{Listing, age, from_json, print_document, timestamp, to_dynamic, truncate},
};

/// The largest page the API serves.
const MAX_PAGE: usize = 500;

/// Pipeline and stage labels by id, to show names where tickets carry ids.
#[derive(Debug, Default)]
pub struct Labels {
    pub pipelines: HashMap<i64, String>,
    pub stages: HashMap<i64, String>,
}

impl Labels {
    /// Every pipeline's labels; empty when they cannot be read (a customer's token, say): ids still show.
    pub async fn load(server: &Server) -> Self {
        let mut labels = Self::default();
        let mut client = server.pipelines();
        let mut page_token = String::new();
        loop {
            let Ok(page) = client
                .list_pipelines(ListPipelinesRequest {
                    page_size: 100,
                    page_token: page_token.clone(),
                })
                .await
            else {
                return labels;
            };
            let page = page.into_inner();
            for pipeline in page.pipelines {
                labels.add(pipeline);
            }
            if page.next_page_token.is_empty() {
                return labels;
            }
            page_token = page.next_page_token;
        }
    }

    fn add(&mut self, pipeline: Pipeline) {
        for stage in pipeline.stages {
            self.stages.insert(stage.id, stage.label);
        }
        self.pipelines.insert(pipeline.id, pipeline.label);
    }

    /// The stage's label, or its id when unknown.
    pub fn stage(&self, id: i64) -> String {
        self.stages
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// The pipeline's label, or its id when unknown.
    pub fn pipeline(&self, id: i64) -> String {
        self.pipelines
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

/// Prints tickets in `format`.
pub async fn print_tickets(
    server: &Server,
    tickets: &[Ticket],
    format: Format,
    single: bool,
) -> Result<(), CliError> {
    let labels = if matches!(format, Format::Table | Format::Wide) {
        Labels::load(server).await
    } else {
        Labels::default()
    };
    let columns = |wide: bool| {
        let mut columns = vec!["ID", "SUBJECT", "PRIORITY", "STAGE", "ASSIGNEE", "AGE"];
        if wide {
            columns.extend([
                "PIPELINE",
                "REQUESTER",
                "ORGANIZATION",
                "TYPE",
                "TAGS",
                "UPDATED",
                "ARCHIVED",
            ]);
        }
        columns
    };
    let row = |ticket: &Ticket, wide: bool| {
        let mut row = vec![
            ticket.id.to_string(),
            if wide {
                ticket.subject.clone()
            } else {
                truncate(&ticket.subject, 50)
            },
            priority_label(ticket.priority).to_owned(),
            labels.stage(ticket.stage_id),
            ticket.assignee_id.clone(),
            age(ticket.create_time.as_ref()),
        ];
        if wide {
            row.extend([
                labels.pipeline(ticket.pipeline_id),
                ticket.requester_id.clone(),
                ticket.organization_id.clone(),
                ticket.ticket_type.clone(),
                ticket.tags.join(","),
                timestamp(ticket.update_time.as_ref()),
                if ticket.archived { "yes" } else { "" }.to_owned(),
            ]);
        }
        row
    };
    Listing {
        items: tickets,
        kind: "ticket",
        plural: "tickets",
        name: &|ticket: &Ticket| ticket.id.to_string(),
        columns: &columns,
        row: &row,
    }
    .print(format, single)
}

/// `get tickets`: ListTickets, or SearchTickets when there is something to search for; pages until the limit.
pub async fn list(server: &Server, args: ListTickets) -> Result<(), CliError> {
    let groups = parse_filters(&args.filter)?;
    let order = args.order_by.as_deref().map(OrderBy::parse).transpose()?;
    let query = args.query.unwrap_or_default();
    let search = !groups.is_empty() || !query.trim().is_empty();
    let limit = if args.limit == 0 {
        usize::MAX
    } else {
        args.limit
    };
    let mut client = server.tickets();
    let mut tickets = Vec::new();
    let mut page_token = String::new();
    while tickets.len() < limit {
        // Bounded by MAX_PAGE, so the cast cannot truncate.
        let page_size = (limit - tickets.len()).min(MAX_PAGE) as i32;
        let (page, next) = if search {
            let response = client
                .search_tickets(SearchTicketsRequest {
                    filter_groups: groups.clone(),
                    query: query.clone(),
                    sorts: order.iter().map(OrderBy::to_sort).collect(),
                    page_size,
                    page_token: page_token.clone(),
                    show_archived: args.archived,
                })
                .await?
                .into_inner();
            (response.tickets, response.next_page_token)
        } else {
            let response = client
                .list_tickets(ListTicketsRequest {
                    page_size,
                    page_token: page_token.clone(),
                    order_by: order.as_ref().map(OrderBy::to_list).unwrap_or_default(),
                    show_archived: args.archived,
                })
                .await?
                .into_inner();
            (response.tickets, response.next_page_token)
        };
        tickets.extend(page);
        if next.is_empty() {
            break;
        }
        page_token = next;
    }
    tickets.truncate(limit);
    print_tickets(server, &tickets, args.output.format, false).await
}

/// `get ticket ID`.
pub async fn get(server: &Server, id: i64, format: Format) -> Result<(), CliError> {
    let ticket = server
        .tickets()
        .get_ticket(GetTicketRequest { id })
        .await?
        .into_inner();
    print_tickets(server, &[ticket], format, true).await
}

/// `create ticket`.
pub async fn create(server: &Server, args: CreateTicket) -> Result<(), CliError> {
    let mut ticket = match &args.file {
        None => Ticket::default(),
        Some(path) => read_ticket_file(path)?,
    };
    if let Some(subject) = args.subject {
        ticket.subject = subject;
    }
    if let Some(priority) = &args.priority {
        ticket.priority = parse_priority(priority)? as i32;
    }
    for assignment in &args.set {
        let (name, value) = split_assignment(assignment)?;
        set_field(&mut ticket, name, value)?;
    }
    let created = server
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(ticket),
            ..CreateTicketRequest::default()
        })
        .await?
        .into_inner();
    report_change(server, &created, "created", &args.output).await
}

/// A ticket in proto3 JSON or YAML (YAML being a superset of JSON, one parser reads both).
fn read_ticket_file(path: &std::path::Path) -> Result<Ticket, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| CliError::local(format!("cannot read {}: {error}", path.display())))?;
    let value: serde_json::Value = serde_norway::from_str(&text).map_err(|error| {
        CliError::local(format!("{}: not JSON or YAML: {error}", path.display()))
    })?;
    from_json(value)
        .map_err(|error| CliError::local(format!("{}: not a ticket: {error}", path.display())))
}

/// `update ticket ID --set ...`: only the named fields are written (the update mask lists them).
pub async fn update(server: &Server, args: UpdateTicket) -> Result<(), CliError> {
    let mut ticket = Ticket {
        id: args.id,
        etag: args.if_match.unwrap_or_default(),
        ..Ticket::default()
    };
    let mut paths = Vec::new();
    for assignment in &args.set {
        let (name, value) = split_assignment(assignment)?;
        let path = set_field(&mut ticket, name, value)?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    let updated = server
        .tickets()
        .update_ticket(UpdateTicketRequest {
            ticket: Some(ticket),
            update_mask: Some(prost_types::FieldMask { paths }),
            ..UpdateTicketRequest::default()
        })
        .await?
        .into_inner();
    report_change(server, &updated, "updated", &args.output).await
}

/// `archive ticket ID`.
pub async fn archive(
    server: &Server,
    id: i64,
    if_match: Option<String>,
    output: &ChangeOutput,
) -> Result<(), CliError> {
    let ticket = server
        .tickets()
        .archive_ticket(ArchiveTicketRequest {
            id,
            etag: if_match.unwrap_or_default(),
            ..ArchiveTicketRequest::default()
        })
        .await?
        .into_inner();
    report_change(server, &ticket, "archived", output).await
}

/// `restore ticket ID`.
pub async fn restore(server: &Server, id: i64, output: &ChangeOutput) -> Result<(), CliError> {
    let ticket = server
        .tickets()
        .restore_ticket(RestoreTicketRequest {
            id,
            ..RestoreTicketRequest::default()
        })
        .await?
        .into_inner();
    report_change(server, &ticket, "restored", output).await
}

/// `ticket/7 created`, or the ticket in the `-o` format asked for.
async fn report_change(
    server: &Server,
    ticket: &Ticket,
    verb: &str,
    output: &ChangeOutput,
) -> Result<(), CliError> {
    match output.format {
        None => {
            outln!("ticket/{} {verb}", ticket.id);
            Ok(())
        }
        Some(format) => print_tickets(server, std::slice::from_ref(ticket), format, true).await,
    }
}

/// `comment ID TEXT [--internal]`.
pub async fn comment(server: &Server, args: CommentArgs) -> Result<(), CliError> {
    let visibility = if args.internal {
        CommentVisibility::Internal
    } else {
        CommentVisibility::Public
    };
    let comment = server
        .tickets()
        .add_comment(AddCommentRequest {
            ticket_id: args.id,
            body: args.text,
            visibility: visibility as i32,
            ..AddCommentRequest::default()
        })
        .await?
        .into_inner();
    match args.output.format {
        None | Some(Format::Table | Format::Wide) => {
            outln!(
                "comment/{} added to ticket/{}",
                comment.id,
                comment.ticket_id
            );
            Ok(())
        }
        Some(Format::Name) => {
            outln!("comment/{}", comment.id);
            Ok(())
        }
        Some(format) => print_document(&to_dynamic(&comment)?, format),
    }
}
