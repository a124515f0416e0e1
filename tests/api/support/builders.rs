//! Request and message builders: the smallest valid value of each kind, for tests to adjust with `..`.

use std::collections::BTreeMap;

use prost_types::FieldMask;
use ticketd::proto::{
    AddCommentRequest, Agent, ArchiveTicketRequest, AssociationSpec, CommentVisibility,
    CreateAgentRequest, CreateAssociationRequest, CreateAssociationTypeRequest,
    CreateCardTemplateRequest, CreatePipelineRequest, CreatePortalRequest, CreatePropertyRequest,
    CreateTicketRequest, DeleteAssociationRequest, Filter, FilterOperator, LogTimeRequest,
    ObjectRef, Pipeline, Portal, PropertyDefinition, PropertyType, RestoreTicketRequest,
    SendCardRequest, Stage, Ticket, TicketState, UpdateAgentRequest, UpdateCardPropertiesRequest,
    UpdatePortalRequest, UpdatePropertyRequest, UpdateTicketRequest, WatchTicketsRequest, Webhook,
};

use super::kaizala_fixture;

/// A ticket with only a subject: everything else defaulted by the server.
pub fn ticket(subject: &str) -> Ticket {
    Ticket {
        subject: subject.to_owned(),
        ..Default::default()
    }
}

/// A pipeline to create.
pub fn pipeline(label: &str, stages: Vec<Stage>) -> Pipeline {
    Pipeline {
        label: label.to_owned(),
        stages,
        ..Default::default()
    }
}

/// A stage to create (inside a pipeline, or with `pipeline_id` set for CreateStage).
pub fn stage(label: &str, state: TicketState, display_order: i32) -> Stage {
    Stage {
        label: label.to_owned(),
        state: state.into(),
        display_order,
        ..Default::default()
    }
}

/// A two-stage pipeline: "Open" (OPEN, order 1) then "Done" (CLOSED, order 2).
pub fn simple_pipeline(label: &str) -> Pipeline {
    pipeline(
        label,
        vec![
            stage("Open", TicketState::Open, 1),
            stage("Done", TicketState::Closed, 2),
        ],
    )
}

/// `None` for no paths (an empty mask), else a mask with those paths.
pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    if paths.is_empty() {
        None
    } else {
        Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    }
}

/// A CreateTicket request for `ticket`, without request id or associations.
pub fn create_ticket_req(ticket: Ticket) -> CreateTicketRequest {
    CreateTicketRequest {
        ticket: Some(ticket),
        request_id: String::new(),
        associations: Vec::new(),
        ..Default::default()
    }
}

/// An UpdateTicket request for the fields of `ticket` named by `paths` (none: every field set).
pub fn update_ticket_req(ticket: Ticket, paths: &[&str]) -> UpdateTicketRequest {
    UpdateTicketRequest {
        ticket: Some(ticket),
        update_mask: mask(paths),
        request_id: String::new(),
        ..Default::default()
    }
}

/// A ticket change that sets only `subject` (for UpdateTicket with the mask `subject`).
pub fn subject_change(id: i64, subject: &str) -> Ticket {
    Ticket {
        id,
        subject: subject.to_owned(),
        ..Default::default()
    }
}

/// A ticket change that sets only `stage_id` (for UpdateTicket with the mask `stage_id`).
pub fn stage_change(id: i64, stage_id: i64) -> Ticket {
    Ticket {
        id,
        stage_id,
        ..Default::default()
    }
}

/// A ticket change that sets only the custom properties `pairs` (for UpdateTicket with `properties.<name>` masks).
pub fn property_change(id: i64, pairs: &[(&str, &str)]) -> Ticket {
    Ticket {
        id,
        properties: properties(pairs),
        ..Default::default()
    }
}

/// An ArchiveTicket request without etag or request id.
pub fn archive_req(id: i64) -> ArchiveTicketRequest {
    ArchiveTicketRequest {
        id,
        ..Default::default()
    }
}

/// A RestoreTicket request without request id.
pub fn restore_req(id: i64) -> RestoreTicketRequest {
    RestoreTicketRequest {
        id,
        ..Default::default()
    }
}

/// A CreatePipeline request for `pipeline`, without request id.
pub fn create_pipeline_req(pipeline: Pipeline) -> CreatePipelineRequest {
    CreatePipelineRequest {
        pipeline: Some(pipeline),
        request_id: String::new(),
    }
}

/// A fresh AIP-155 request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A property map (custom property values, card bindings) from `(name, value)` pairs.
pub fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Owned copies of `items`.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// An optional property definition to create, labelled with its name.
pub fn property_def(name: &str, r#type: PropertyType) -> PropertyDefinition {
    PropertyDefinition {
        name: name.to_owned(),
        label: name.to_owned(),
        r#type: r#type.into(),
        ..Default::default()
    }
}

/// A CreateProperty request for `property`, without request id.
pub fn create_property_req(property: PropertyDefinition) -> CreatePropertyRequest {
    CreatePropertyRequest {
        property: Some(property),
        request_id: String::new(),
    }
}

/// An UpdateProperty request for the fields of `property` named by `paths` (none: every field set).
pub fn update_property_req(property: PropertyDefinition, paths: &[&str]) -> UpdatePropertyRequest {
    UpdatePropertyRequest {
        property: Some(property),
        update_mask: mask(paths),
        request_id: String::new(),
    }
}

/// A search filter with a single `value`.
pub fn filter(property: &str, operator: FilterOperator, value: &str) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: operator.into(),
        value: value.to_owned(),
        ..Default::default()
    }
}

/// A search filter with `values` (IN, NOT_IN).
pub fn filter_in(property: &str, operator: FilterOperator, values: &[&str]) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: operator.into(),
        values: strings(values),
        ..Default::default()
    }
}

/// A BETWEEN filter, both ends inclusive.
pub fn filter_between(property: &str, low: &str, high: &str) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: FilterOperator::Between.into(),
        value: low.to_owned(),
        high_value: high.to_owned(),
        ..Default::default()
    }
}

/// A reference to an object of another system (a contact, a company, ...) or to a ticket.
pub fn object(object_type: &str, object_id: &str) -> ObjectRef {
    ObjectRef {
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
    }
}

/// A link to make; `association_type_id` 0 is the default system type.
pub fn link(object_type: &str, object_id: &str, association_type_id: i64) -> AssociationSpec {
    AssociationSpec {
        to: Some(object(object_type, object_id)),
        association_type_id,
    }
}

/// A CreateAssociation request linking a ticket to an object; `association_type_id` 0 is the default system type.
pub fn associate(
    ticket_id: i64,
    object_type: &str,
    object_id: &str,
    association_type_id: i64,
) -> CreateAssociationRequest {
    CreateAssociationRequest {
        ticket_id,
        association: Some(link(object_type, object_id, association_type_id)),
        request_id: String::new(),
    }
}

/// A DeleteAssociation request for the link [`associate`] makes with the same arguments.
pub fn unlink(
    ticket_id: i64,
    object_type: &str,
    object_id: &str,
    association_type_id: i64,
) -> DeleteAssociationRequest {
    DeleteAssociationRequest {
        ticket_id,
        association: Some(link(object_type, object_id, association_type_id)),
        request_id: String::new(),
    }
}

/// A CreateAssociationType request (an empty `inverse_label` means the same label from both ends).
pub fn association_type_req(
    from: &str,
    to: &str,
    label: &str,
    inverse_label: &str,
) -> CreateAssociationTypeRequest {
    CreateAssociationTypeRequest {
        from_object_type: from.to_owned(),
        to_object_type: to.to_owned(),
        label: label.to_owned(),
        inverse_label: inverse_label.to_owned(),
        request_id: String::new(),
    }
}

/// A watch of every ticket replaying after `after_event_id` (0: live only).
pub fn watch_all(after_event_id: i64) -> WatchTicketsRequest {
    WatchTicketsRequest {
        after_event_id,
        ..Default::default()
    }
}

/// An AddComment request with `visibility` (PUBLIC for customers to read, INTERNAL for the desk only).
pub fn comment_req(ticket_id: i64, body: &str, visibility: CommentVisibility) -> AddCommentRequest {
    AddCommentRequest {
        ticket_id,
        body: body.to_owned(),
        visibility: visibility.into(),
        request_id: String::new(),
        ..Default::default()
    }
}

/// A LogTime request without a note.
pub fn log_time_req(ticket_id: i64, minutes: i32, work_date: &str) -> LogTimeRequest {
    LogTimeRequest {
        ticket_id,
        minutes,
        work_date: work_date.to_owned(),
        note: String::new(),
        request_id: String::new(),
    }
}

/// A portal that shows its customers the tickets they requested, and nothing more.
pub fn portal(name: &str) -> Portal {
    Portal {
        name: name.to_owned(),
        requested_tickets: true,
        ..Default::default()
    }
}

/// A CreatePortal request for `portal`, without request id.
pub fn create_portal_req(portal: Portal) -> CreatePortalRequest {
    CreatePortalRequest {
        portal: Some(portal),
        request_id: String::new(),
    }
}

/// An UpdatePortal request for the fields of `portal` named by `paths` (none: every field set).
pub fn update_portal_req(portal: Portal, paths: &[&str]) -> UpdatePortalRequest {
    UpdatePortalRequest {
        portal: Some(portal),
        update_mask: mask(paths),
        request_id: String::new(),
    }
}

/// A directory entry with a display name made from its id (`agent` is the customers world's agent id).
pub fn new_agent(id: &str, email: &str) -> Agent {
    Agent {
        id: id.to_owned(),
        email: email.to_owned(),
        display_name: format!("Agent {id}"),
        ..Default::default()
    }
}

/// A CreateAgent request for `agent`, without request id.
pub fn create_agent_req(agent: Agent) -> CreateAgentRequest {
    CreateAgentRequest {
        agent: Some(agent),
        request_id: String::new(),
    }
}

/// An UpdateAgent request for the fields of `agent` named by `paths` (none: every field set).
pub fn update_agent_req(agent: Agent, paths: &[&str]) -> UpdateAgentRequest {
    UpdateAgentRequest {
        agent: Some(agent),
        update_mask: mask(paths),
        request_id: String::new(),
    }
}

/// The group [`send_card_req`] callers usually send to.
pub const CARD_GROUP: &str = "group-1";
/// The one subscriber of the cards [`send_card_req`] sends.
pub const CARD_SUBSCRIBER: &str = "+15550100";
/// The customer line of the cards [`send_card_req`] sends.
pub const CARD_CUSTOMER: &str = "NAME: John Thomas";

/// A CreateCardTemplate request for the Kaizala fixture's view with [`card_bindings`].
pub fn card_template_req(name: &str) -> CreateCardTemplateRequest {
    CreateCardTemplateRequest {
        name: name.to_owned(),
        schema: kaizala_fixture("ChatCardView.json"),
        app_model: kaizala_fixture("AppModel.json"),
        bindings: card_bindings(),
        request_id: String::new(),
    }
}

/// The bindings of [`card_template_req`]: the ticket number shows the id, the status the stage's label.
pub fn card_bindings() -> BTreeMap<String, String> {
    properties(&[("ticketnumber", "id"), ("ticketstatus", "stage.label")])
}

/// A SendCard request to [`CARD_SUBSCRIBER`] of `group_id`, showing [`CARD_CUSTOMER`].
pub fn send_card_req(template_id: i64, ticket_id: i64, group_id: &str) -> SendCardRequest {
    SendCardRequest {
        template_id,
        ticket_id,
        group_id: group_id.to_owned(),
        subscribers: strings(&[CARD_SUBSCRIBER]),
        send_to_all_subscribers: false,
        properties: properties(&[("customername", CARD_CUSTOMER)]),
        request_id: String::new(),
    }
}

/// An UpdateCardProperties request setting `pairs` at `version` (-1: whatever the current one is).
pub fn update_card_req(
    card_id: i64,
    version: i64,
    pairs: &[(&str, &str)],
) -> UpdateCardPropertiesRequest {
    UpdateCardPropertiesRequest {
        card_id,
        version,
        update_properties: properties(pairs),
        request_id: String::new(),
    }
}

/// A webhook to create: `url`, subscribed to `event_types`.
pub fn hook(url: &str, event_types: &[&str]) -> Webhook {
    Webhook {
        url: url.to_owned(),
        event_types: strings(event_types),
        ..Default::default()
    }
}
