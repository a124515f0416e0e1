//! Tickets, comments and events between the wire and the domain.

use super::super::{
    associations::{association_to_proto, spec_from_proto},
    side_effects_to_proto, timestamp,
};
use crate::{
    domain::{
        Error,
        access::Viewer,
        commands::{NewTicket, TicketUpdate},
        comment::{Comment, Visibility},
        event::{EventDetail, EventKind, TicketEvent},
        field::TicketField,
        queries::{TicketOrder, TicketOrderField},
        ticket::{
            self, Priority, Ticket, TicketChanges, TicketDraft, parse_content, parse_external_id,
            parse_properties, parse_reference, parse_subject, parse_tags,
        },
    },
    proto,
};

/// A ticket and its links to create; errors name `ticket.<field>` or `associations[i].<field>`.
pub(super) fn new_ticket_from_proto(
    request: proto::CreateTicketRequest,
) -> Result<NewTicket, Error> {
    let ticket = request
        .ticket
        .ok_or_else(|| Error::invalid("ticket", "is required"))?;
    let draft = draft_from_proto(ticket).map_err(|error| error.within("ticket"))?;
    let associations = request
        .associations
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            spec_from_proto(Some(spec))
                .map_err(|error| error.within(&format!("associations[{index}]")))
        })
        .collect::<Result<_, _>>()?;
    Ok(NewTicket {
        draft,
        associations,
    })
}

/// An update; errors name `ticket.<field>` or `update_mask`.
pub(super) fn update_from_proto(
    request: proto::UpdateTicketRequest,
) -> Result<TicketUpdate, Error> {
    let ticket = request
        .ticket
        .ok_or_else(|| Error::invalid("ticket", "is required"))?;
    if ticket.id == 0 {
        return Err(Error::invalid("ticket.id", "is required"));
    }
    let (id, etag) = (ticket.id, ticket.etag.clone());
    let changes = changes_from_proto(ticket, request.update_mask)?;
    Ok(TicketUpdate { id, etag, changes })
}

pub(super) fn parse_visibility(raw: i32) -> Result<Visibility, Error> {
    match proto::CommentVisibility::try_from(raw) {
        Ok(proto::CommentVisibility::Public) => Ok(Visibility::Public),
        Ok(proto::CommentVisibility::Internal) => Ok(Visibility::Internal),
        _ => Err(Error::invalid(
            "visibility",
            "is required: PUBLIC or INTERNAL",
        )),
    }
}

pub(super) fn comment_to_proto(comment: Comment) -> proto::Comment {
    let visibility = match comment.visibility {
        Visibility::Public => proto::CommentVisibility::Public,
        Visibility::Internal => proto::CommentVisibility::Internal,
    };
    proto::Comment {
        id: comment.id,
        ticket_id: comment.ticket_id,
        author_id: comment.author_id,
        body: comment.body,
        visibility: visibility.into(),
        create_time: Some(timestamp(comment.create_time)),
    }
}

/// The wire form of an event; streams carry the ticket snapshot, history listings leave it out.
pub(crate) fn event_to_proto(event: TicketEvent, with_ticket: bool) -> proto::TicketEvent {
    let kind = match event.kind {
        EventKind::Created => proto::TicketEventKind::Created,
        EventKind::Updated => proto::TicketEventKind::Updated,
        EventKind::StageChanged => proto::TicketEventKind::StageChanged,
        EventKind::Archived => proto::TicketEventKind::Archived,
        EventKind::Restored => proto::TicketEventKind::Restored,
        EventKind::CommentAdded => proto::TicketEventKind::CommentAdded,
        EventKind::AssociationAdded => proto::TicketEventKind::AssociationAdded,
        EventKind::AssociationRemoved => proto::TicketEventKind::AssociationRemoved,
    };
    let (comment, association) = match event.detail {
        Some(EventDetail::Comment(comment)) => (Some(comment_to_proto(comment)), None),
        Some(EventDetail::Association(link)) => (None, Some(association_to_proto(link))),
        None => (None, None),
    };
    proto::TicketEvent {
        event_id: event.event_id,
        ticket_id: event.ticket_id,
        kind: kind.into(),
        changes: event
            .changes
            .into_iter()
            .map(|change| proto::FieldChange {
                field: change.field.to_string(),
                old_value: change.old_value,
                new_value: change.new_value,
            })
            .collect(),
        actor_id: event.actor_id,
        create_time: Some(timestamp(event.create_time)),
        comment,
        association,
        ticket: event.ticket.filter(|_| with_ticket).map(ticket_to_proto),
        side_effects: Some(side_effects_to_proto(event.side_effects)),
        cause_event_id: event.cause_event_id.unwrap_or_default(),
        heartbeat: false,
    }
}

/// Parses `order_by`: `id`, `create_time` or `update_time`, optionally followed by `asc` or `desc`.
pub(super) fn parse_order_by(order_by: &str) -> Result<TicketOrder, Error> {
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

pub(crate) fn draft_from_proto(ticket: proto::Ticket) -> Result<TicketDraft, Error> {
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
        project_id: parse_reference("project_id", ticket.project_id)?,
        external_id: parse_external_id(ticket.external_id)?,
        properties: parse_properties(ticket.properties)?,
    })
}

/// The fields an update with an empty mask applies: every one the request sets to a non-default value.
/// Properties are merged one by one, the way HubSpot's PATCH treats them. The message is taken apart whole,
/// so a field added to `Ticket` in the proto does not compile until it is decided here.
fn fields_set(ticket: &proto::Ticket) -> Vec<TicketField> {
    let proto::Ticket {
        id: _,
        subject,
        content,
        pipeline_id,
        stage_id,
        priority,
        requester_id,
        assignee_id,
        organization_id,
        ticket_type,
        tags,
        project_id,
        external_id,
        properties,
        create_time: _,
        update_time: _,
        close_time: _,
        archive_time: _,
        archived: _,
        etag: _,
    } = ticket;
    let core = [
        (!subject.is_empty(), TicketField::Subject),
        (!content.is_empty(), TicketField::Content),
        (*pipeline_id != 0, TicketField::PipelineId),
        (*stage_id != 0, TicketField::StageId),
        (*priority != 0, TicketField::Priority),
        (!requester_id.is_empty(), TicketField::RequesterId),
        (!assignee_id.is_empty(), TicketField::AssigneeId),
        (!organization_id.is_empty(), TicketField::OrganizationId),
        (!ticket_type.is_empty(), TicketField::TicketType),
        (!tags.is_empty(), TicketField::Tags),
        (!project_id.is_empty(), TicketField::ProjectId),
        // Set on create only; an update may repeat the stored one (`TicketChanges::apply_fields` checks).
        (!external_id.is_empty(), TicketField::ExternalId),
    ];
    TicketField::listed(core, properties.keys())
}

/// Turns an update request into changes; errors name `update_mask` or the `ticket.` field at fault.
fn changes_from_proto(
    mut ticket: proto::Ticket,
    mask: Option<prost_types::FieldMask>,
) -> Result<TicketChanges, Error> {
    let fields: Vec<Result<TicketField, Error>> = match mask {
        Some(mask) if !mask.paths.is_empty() => mask
            .paths
            .iter()
            .map(|path| match TicketField::parse(path) {
                // Naming it in a mask can only mean changing it, which an update never may.
                Some(field) if field.create_only() => Err(Error::invalid(
                    "update_mask",
                    format!("path {path:?} can only be set on create"),
                )),
                Some(field) => Ok(field),
                None => Err(unknown_path(path)),
            })
            .collect(),
        _ => fields_set(&ticket).into_iter().map(Ok).collect(),
    };
    let mut changes = TicketChanges::default();
    for field in fields {
        let field = field?;
        let applied = apply_field(&mut changes, &mut ticket, field.clone())
            .map_err(|error| error.within("ticket"))?;
        if !applied {
            return Err(Error::invalid(
                "update_mask",
                format!("path {:?} is output only", field.to_string()),
            ));
        }
    }
    Ok(changes)
}

fn unknown_path(path: &str) -> Error {
    Error::invalid(
        "update_mask",
        format!(
            "unknown path {path:?}; updatable paths are {}, properties.<name>",
            TicketField::names_where(|field| field.rules().writable && !field.create_only())
        ),
    )
}

/// Moves a reference field out of the request, validated.
fn take_reference(field: &str, value: &mut String) -> Result<String, Error> {
    parse_reference(field, std::mem::take(value))
}

/// Applies one mask path; `false` for an output-only field, as the field rules say (a test keeps the two in
/// step).
fn apply_field(
    changes: &mut TicketChanges,
    ticket: &mut proto::Ticket,
    field: TicketField,
) -> Result<bool, Error> {
    match field {
        TicketField::Subject => changes.subject = Some(parse_subject(&ticket.subject)?),
        TicketField::Content => {
            changes.content = Some(parse_content(std::mem::take(&mut ticket.content))?)
        }
        TicketField::PipelineId => changes.pipeline_id = Some(ticket.pipeline_id),
        TicketField::StageId => {
            changes.stage_id = Some(optional_id(ticket.stage_id).ok_or_else(|| {
                Error::invalid("stage_id", "a ticket is always in a stage; name one")
            })?)
        }
        TicketField::Priority => changes.priority = Some(parse_priority(ticket.priority)?),
        TicketField::RequesterId => {
            changes.requester_id = Some(take_reference("requester_id", &mut ticket.requester_id)?)
        }
        TicketField::AssigneeId => {
            changes.assignee_id = Some(take_reference("assignee_id", &mut ticket.assignee_id)?)
        }
        TicketField::OrganizationId => {
            changes.organization_id = Some(take_reference(
                "organization_id",
                &mut ticket.organization_id,
            )?)
        }
        TicketField::TicketType => {
            changes.ticket_type = Some(take_reference("ticket_type", &mut ticket.ticket_type)?)
        }
        TicketField::Tags => changes.tags = Some(parse_tags(std::mem::take(&mut ticket.tags))?),
        TicketField::ProjectId => {
            changes.project_id = Some(take_reference("project_id", &mut ticket.project_id)?)
        }
        TicketField::ExternalId => {
            changes.external_id = Some(parse_external_id(std::mem::take(&mut ticket.external_id))?)
        }
        TicketField::Properties => {
            changes.properties = Some(parse_properties(ticket.properties.clone())?)
        }
        TicketField::Property(name) => {
            let value = ticket.properties.get(&name).cloned();
            if let Some(value) = &value {
                ticket::check_property(&name, value)?;
            }
            changes.property_updates.insert(name, value);
        }
        TicketField::Id
        | TicketField::CreateTime
        | TicketField::UpdateTime
        | TicketField::CloseTime
        | TicketField::ArchiveTime
        | TicketField::Archived
        | TicketField::Etag => return Ok(false),
    }
    Ok(true)
}

/// Tickets on the wire as `viewer` may see them.
pub(super) fn tickets_to_proto(viewer: &Viewer, tickets: Vec<Ticket>) -> Vec<proto::Ticket> {
    tickets
        .into_iter()
        .map(|ticket| ticket_to_proto(viewer.redact(ticket)))
        .collect()
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
        project_id: ticket.project_id,
        external_id: ticket.external_id,
        properties: ticket.properties,
        create_time: Some(timestamp(ticket.create_time)),
        update_time: Some(timestamp(ticket.update_time)),
        close_time: ticket.close_time.map(timestamp),
        archive_time: ticket.archive_time.map(timestamp),
        archived,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_mask_accepts_exactly_the_writable_fields() {
        for field in TicketField::core().chain([TicketField::Property("region".into())]) {
            let mut ticket = proto::Ticket {
                subject: "s".into(),
                stage_id: 1,
                ..Default::default()
            };
            let applied = apply_field(&mut TicketChanges::default(), &mut ticket, field.clone());
            assert_eq!(
                applied.as_ref().ok(),
                Some(&field.rules().writable),
                "{field}: the mask and the field rules disagree ({applied:?})"
            );
        }
    }

    fn invalid_field(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn an_external_id_is_set_on_create_and_only_repeated_by_updates() {
        let ticket = |external_id: &str| proto::Ticket {
            subject: "s".into(),
            external_id: external_id.into(),
            ..Default::default()
        };
        let draft = draft_from_proto(ticket("  zendesk-1 ")).unwrap();
        assert_eq!(draft.external_id, "zendesk-1");
        assert_eq!(
            invalid_field(draft_from_proto(ticket(&"x".repeat(256)))),
            "external_id"
        );
        assert_eq!(
            invalid_field(draft_from_proto(ticket("zendesk\u{7}1"))),
            "external_id"
        );
        let mask = prost_types::FieldMask {
            paths: vec!["external_id".into()],
        };
        assert_eq!(
            invalid_field(changes_from_proto(ticket("zendesk-1"), Some(mask))),
            "update_mask"
        );
        let repeated = changes_from_proto(ticket("zendesk-1"), None).unwrap();
        assert_eq!(repeated.external_id.as_deref(), Some("zendesk-1"));
        assert!(!unknown_path("nope").to_string().contains("external_id"));
    }
}
