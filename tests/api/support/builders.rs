//! Request and message builders: the smallest valid value of each kind, for tests to adjust with `..`.

use std::collections::BTreeMap;

use prost_types::FieldMask;
use ticketd::proto::{
    AddCommentRequest, AssociationSpec, CommentVisibility, CreateTicketRequest, Filter,
    FilterOperator, ObjectRef, Pipeline, PropertyDefinition, PropertyType, Stage, Ticket,
    TicketState, UpdateTicketRequest, WatchTicketsRequest,
};

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
    }
}

/// An UpdateTicket request for the fields of `ticket` named by `paths` (none: every field set).
pub fn update_ticket_req(ticket: Ticket, paths: &[&str]) -> UpdateTicketRequest {
    UpdateTicketRequest {
        ticket: Some(ticket),
        update_mask: mask(paths),
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
    }
}
