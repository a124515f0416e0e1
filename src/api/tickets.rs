//! `ticketd.v1.TicketService`.

use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, decode_page_token, encode_page_token, idempotent_requests, query_fingerprint,
    request_key, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        page::page_size,
        ticket::{
            self, Priority, Ticket, TicketChanges, TicketDraft, parse_content, parse_properties,
            parse_reference, parse_subject, parse_tags,
        },
    },
    proto::{self, ticket_service_server::TicketService},
    store::{Store, TicketListQuery, TicketOrder, TicketOrderField},
};

idempotent_requests! {
    proto::CreateTicketRequest => "ticketd.v1.TicketService/CreateTicket",
    proto::UpdateTicketRequest => "ticketd.v1.TicketService/UpdateTicket",
    proto::ArchiveTicketRequest => "ticketd.v1.TicketService/ArchiveTicket",
    proto::RestoreTicketRequest => "ticketd.v1.TicketService/RestoreTicket",
}

const UPDATABLE_PATHS: &[&str] = &[
    "subject",
    "content",
    "pipeline_id",
    "stage_id",
    "priority",
    "requester_id",
    "assignee_id",
    "organization_id",
    "ticket_type",
    "tags",
    "properties",
    "properties.<name>",
];
const OUTPUT_ONLY_PATHS: &[&str] = &[
    "id",
    "create_time",
    "update_time",
    "close_time",
    "archive_time",
    "archived",
    "etag",
];

/// Serves tickets from the store.
pub struct TicketApi {
    store: Store,
}

impl TicketApi {
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl TicketService for TicketApi {
    async fn create_ticket(
        &self,
        request: Request<proto::CreateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let request = request.into_inner();
        let key = request_key(&request)?;
        let ticket = request
            .ticket
            .ok_or_else(|| Error::invalid("ticket", "is required"))?;
        let created = async {
            let draft = draft_from_proto(ticket)?;
            self.store.create_ticket(draft, key.as_ref()).await
        }
        .await
        .map_err(|error| error.within("ticket"))?;
        Ok(Response::new(ticket_to_proto(created)))
    }

    async fn get_ticket(
        &self,
        request: Request<proto::GetTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let id = request.into_inner().id;
        Ok(Response::new(ticket_to_proto(
            self.store.get_ticket(id).await?,
        )))
    }

    async fn list_tickets(
        &self,
        request: Request<proto::ListTicketsRequest>,
    ) -> Result<Response<proto::ListTicketsResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let order = parse_order_by(&request.order_by)?;
        let query = query_fingerprint(&format!(
            "tickets order={:?} desc={} archived={}",
            order.field, order.descending, request.show_archived
        ));
        let after = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_tickets(&TicketListQuery {
                order,
                show_archived: request.show_archived,
                page_size,
                after,
            })
            .await?;
        Ok(Response::new(proto::ListTicketsResponse {
            tickets: page.items.into_iter().map(ticket_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_ticket(
        &self,
        request: Request<proto::UpdateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let request = request.into_inner();
        let key = request_key(&request)?;
        let ticket = request
            .ticket
            .ok_or_else(|| Error::invalid("ticket", "is required"))?;
        if ticket.id == 0 {
            return Err(Error::invalid("ticket.id", "is required").into());
        }
        let (id, sent_etag) = (ticket.id, ticket.etag.clone());
        let changes = changes_from_proto(ticket, request.update_mask)?;
        let updated = self
            .store
            .update_ticket(id, &sent_etag, changes, key.as_ref())
            .await
            .map_err(|error| error.within("ticket"))?;
        Ok(Response::new(ticket_to_proto(updated)))
    }

    async fn archive_ticket(
        &self,
        request: Request<proto::ArchiveTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let request = request.into_inner();
        let key = request_key(&request)?;
        let archived = self
            .store
            .archive_ticket(request.id, &request.etag, key.as_ref())
            .await?;
        Ok(Response::new(ticket_to_proto(archived)))
    }

    async fn restore_ticket(
        &self,
        request: Request<proto::RestoreTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let request = request.into_inner();
        let key = request_key(&request)?;
        let restored = self.store.restore_ticket(request.id, key.as_ref()).await?;
        Ok(Response::new(ticket_to_proto(restored)))
    }
}

/// Parses `order_by`: `id`, `create_time` or `update_time`, optionally followed by `asc` or `desc`.
fn parse_order_by(order_by: &str) -> Result<TicketOrder, Error> {
    let invalid = || {
        Error::invalid(
            "order_by",
            format!(
                "{order_by:?} is not supported; use id, create_time or update_time, optionally followed by asc or desc"
            ),
        )
    };
    let mut words = order_by.split_whitespace();
    let field = match words.next() {
        None | Some("id") => TicketOrderField::Id,
        Some("create_time") => TicketOrderField::CreateTime,
        Some("update_time") => TicketOrderField::UpdateTime,
        Some(_) => return Err(invalid()),
    };
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid()),
    };
    if words.next().is_some() {
        return Err(invalid());
    }
    Ok(TicketOrder { field, descending })
}

fn parse_priority(raw: i32) -> Result<Option<Priority>, Error> {
    match proto::Priority::try_from(raw) {
        Ok(proto::Priority::Unspecified) => Ok(None),
        Ok(proto::Priority::Low) => Ok(Some(Priority::Low)),
        Ok(proto::Priority::Medium) => Ok(Some(Priority::Medium)),
        Ok(proto::Priority::High) => Ok(Some(Priority::High)),
        Ok(proto::Priority::Urgent) => Ok(Some(Priority::Urgent)),
        Err(_) => Err(Error::invalid(
            "priority",
            format!("{raw} is not a Priority value"),
        )),
    }
}

fn priority_to_proto(priority: Option<Priority>) -> proto::Priority {
    match priority {
        None => proto::Priority::Unspecified,
        Some(Priority::Low) => proto::Priority::Low,
        Some(Priority::Medium) => proto::Priority::Medium,
        Some(Priority::High) => proto::Priority::High,
        Some(Priority::Urgent) => proto::Priority::Urgent,
    }
}

/// Zero ids mean "not given": the default pipeline and its first stage.
fn optional_id(id: i64) -> Option<i64> {
    (id != 0).then_some(id)
}

fn draft_from_proto(ticket: proto::Ticket) -> Result<TicketDraft, Error> {
    Ok(TicketDraft {
        subject: parse_subject(&ticket.subject)?,
        content: parse_content(ticket.content)?,
        pipeline_id: optional_id(ticket.pipeline_id),
        stage_id: optional_id(ticket.stage_id),
        priority: parse_priority(ticket.priority)?,
        requester_id: parse_reference("requester_id", ticket.requester_id)?,
        assignee_id: parse_reference("assignee_id", ticket.assignee_id)?,
        organization_id: parse_reference("organization_id", ticket.organization_id)?,
        ticket_type: parse_reference("ticket_type", ticket.ticket_type)?,
        tags: parse_tags(ticket.tags)?,
        properties: parse_properties(ticket.properties)?,
    })
}

/// The fields an update with an empty mask applies: every one the request sets to a non-default value.
/// Properties are merged one by one, the way HubSpot's PATCH treats them.
fn fields_set(ticket: &proto::Ticket) -> Vec<&'static str> {
    let mut paths = Vec::new();
    let mut add = |is_set: bool, path: &'static str| {
        if is_set {
            paths.push(path);
        }
    };
    add(!ticket.subject.is_empty(), "subject");
    add(!ticket.content.is_empty(), "content");
    add(ticket.pipeline_id != 0, "pipeline_id");
    add(ticket.stage_id != 0, "stage_id");
    add(ticket.priority != 0, "priority");
    add(!ticket.requester_id.is_empty(), "requester_id");
    add(!ticket.assignee_id.is_empty(), "assignee_id");
    add(!ticket.organization_id.is_empty(), "organization_id");
    add(!ticket.ticket_type.is_empty(), "ticket_type");
    add(!ticket.tags.is_empty(), "tags");
    paths
}

/// Turns an update request into changes; errors name `update_mask` or the `ticket.` field at fault.
fn changes_from_proto(
    mut ticket: proto::Ticket,
    mask: Option<prost_types::FieldMask>,
) -> Result<TicketChanges, Error> {
    let empty_mask = mask.as_ref().is_none_or(|mask| mask.paths.is_empty());
    let mut paths = update_paths(mask, || fields_set(&ticket));
    if empty_mask {
        paths.extend(
            ticket
                .properties
                .keys()
                .map(|name| format!("properties.{name}")),
        );
    }
    let mut changes = TicketChanges::default();
    for path in paths {
        let known =
            apply_path(&mut changes, &mut ticket, &path).map_err(|error| error.within("ticket"))?;
        if !known {
            return Err(bad_mask_path(&path, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS));
        }
    }
    Ok(changes)
}

/// Moves a reference field out of the request, validated.
fn take_reference(field: &str, value: &mut String) -> Result<String, Error> {
    parse_reference(field, std::mem::take(value))
}

/// Applies one mask path; `false` when the path is not an updatable field.
fn apply_path(
    changes: &mut TicketChanges,
    ticket: &mut proto::Ticket,
    path: &str,
) -> Result<bool, Error> {
    match path {
        "subject" => changes.subject = Some(parse_subject(&ticket.subject)?),
        "content" => changes.content = Some(parse_content(std::mem::take(&mut ticket.content))?),
        "pipeline_id" => changes.pipeline_id = Some(ticket.pipeline_id),
        "stage_id" => {
            changes.stage_id = Some(optional_id(ticket.stage_id).ok_or_else(|| {
                Error::invalid("stage_id", "a ticket is always in a stage; name one")
            })?)
        }
        "priority" => changes.priority = Some(parse_priority(ticket.priority)?),
        "requester_id" => {
            changes.requester_id = Some(take_reference("requester_id", &mut ticket.requester_id)?)
        }
        "assignee_id" => {
            changes.assignee_id = Some(take_reference("assignee_id", &mut ticket.assignee_id)?)
        }
        "organization_id" => {
            changes.organization_id = Some(take_reference(
                "organization_id",
                &mut ticket.organization_id,
            )?)
        }
        "ticket_type" => {
            changes.ticket_type = Some(take_reference("ticket_type", &mut ticket.ticket_type)?)
        }
        "tags" => changes.tags = Some(parse_tags(std::mem::take(&mut ticket.tags))?),
        "properties" => changes.properties = Some(parse_properties(ticket.properties.clone())?),
        other => match other.strip_prefix("properties.") {
            Some(name) => {
                let value = ticket.properties.get(name).cloned();
                if let Some(value) = &value {
                    ticket::check_property(name, value)?;
                }
                changes.property_updates.insert(name.to_owned(), value);
            }
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// The wire form of a ticket.
pub(crate) fn ticket_to_proto(ticket: Ticket) -> proto::Ticket {
    let archived = ticket.archived();
    proto::Ticket {
        etag: ticket.etag(),
        id: ticket.id,
        subject: ticket.subject,
        content: ticket.content,
        pipeline_id: ticket.pipeline_id,
        stage_id: ticket.stage_id,
        priority: priority_to_proto(ticket.priority).into(),
        requester_id: ticket.requester_id,
        assignee_id: ticket.assignee_id,
        organization_id: ticket.organization_id,
        ticket_type: ticket.ticket_type,
        tags: ticket.tags,
        properties: ticket.properties,
        create_time: Some(timestamp(ticket.create_time)),
        update_time: Some(timestamp(ticket.update_time)),
        close_time: ticket.close_time.map(timestamp),
        archive_time: ticket.archive_time.map(timestamp),
        archived,
    }
}
