//! The ticket fields and labels a card may be bound to, and their text on a card.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{
    Error, Result,
    field::TicketField,
    pipeline::TicketState,
    ticket::{PROPERTY_NAME_MAX_CHARS, Ticket},
};

/// A ticket field a card property or a view may be bound to: a field of the ticket itself, or a label of its
/// pipeline or stage, which the ticket only holds the id of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TicketPath {
    Field(TicketField),
    PipelineLabel,
    StageLabel,
    StageState,
}

/// A ticket with the labels of its pipeline and stage, which the ticket itself only holds ids of.
#[derive(Debug, Clone, Copy)]
pub struct TicketContext<'a> {
    pub ticket: &'a Ticket,
    pub pipeline_label: &'a str,
    pub stage_label: &'a str,
    pub stage_state: TicketState,
}

/// The paths that name a pipeline's or stage's labels rather than a ticket field.
pub(super) const LABEL_PATHS: [(&str, TicketPath); 3] = [
    ("pipeline.label", TicketPath::PipelineLabel),
    ("stage.label", TicketPath::StageLabel),
    ("stage.state", TicketPath::StageState),
];

/// Whether a card may show a ticket field.
pub(super) fn bindable(field: &TicketField) -> bool {
    match field {
        TicketField::Id
        | TicketField::Subject
        | TicketField::Content
        | TicketField::Priority
        | TicketField::PipelineId
        | TicketField::StageId
        | TicketField::RequesterId
        | TicketField::AssigneeId
        | TicketField::OrganizationId
        | TicketField::TicketType
        | TicketField::ExternalId
        | TicketField::Tags
        | TicketField::CreateTime
        | TicketField::UpdateTime
        | TicketField::CloseTime
        | TicketField::Property(_) => true,
        // The whole map has no single value; the trash and version fields say nothing to a chat's reader.
        TicketField::ProjectId
        | TicketField::Properties
        | TicketField::ArchiveTime
        | TicketField::Archived
        | TicketField::Etag => false,
    }
}

/// Parses a ticket field path such as `stage.label` or `properties.region`, reported as `field`.
pub fn parse_ticket_path(field: &str, path: &str) -> Result<TicketPath> {
    path_from_str(path).map_err(|why| Error::invalid(field, why))
}

pub(crate) fn path_from_str(path: &str) -> std::result::Result<TicketPath, String> {
    if let Some((_, label)) = LABEL_PATHS.iter().find(|(name, _)| *name == path) {
        return Ok(label.clone());
    }
    match TicketField::parse(path) {
        Some(TicketField::Property(name)) => {
            let length = name.chars().count();
            if name.is_empty() || length > PROPERTY_NAME_MAX_CHARS {
                return Err(format!(
                    "{path:?}: a property name must have 1 to {PROPERTY_NAME_MAX_CHARS} characters"
                ));
            }
            Ok(TicketPath::Field(TicketField::Property(name)))
        }
        Some(field) if bindable(&field) => Ok(TicketPath::Field(field)),
        _ => Err(format!(
            "unknown ticket field {path:?}; expected one of {}, {}, properties.<name>",
            TicketField::names_where(bindable),
            LABEL_PATHS.map(|(name, _)| name).join(", ")
        )),
    }
}

impl TicketPath {
    /// The field's value as card text: enums in their stored spelling, tags comma-joined, times RFC 3339 UTC,
    /// cut to [`MAX_BOUND_VALUE_CHARS`]; an unset field is "".
    pub fn resolve(&self, view: &TicketContext) -> String {
        super::template::bounded(match self {
            Self::Field(field) => field.text(view.ticket, timestamp),
            Self::PipelineLabel => view.pipeline_label.to_owned(),
            Self::StageLabel => view.stage_label.to_owned(),
            Self::StageState => view.stage_state.as_str().to_owned(),
        })
    }

    /// The ticket field whose visibility decides whether a customer may see this path's value: a label shows
    /// which pipeline or stage the ticket is in.
    pub fn field(&self) -> TicketField {
        match self {
            Self::Field(field) => field.clone(),
            Self::PipelineLabel => TicketField::PipelineId,
            Self::StageLabel | Self::StageState => TicketField::StageId,
        }
    }
}

impl fmt::Display for TicketPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(field) => field.fmt(f),
            label => {
                let name = LABEL_PATHS
                    .iter()
                    .find(|(_, path)| path == label)
                    .map_or("", |(name, _)| *name);
                f.write_str(name)
            }
        }
    }
}

pub(crate) fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
