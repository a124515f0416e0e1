//! Tickets: their fields, the limits on them, and how they move between stages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result, field::TicketField, pipeline::TicketState};

/// Longest subject, in characters.
pub const SUBJECT_MAX_CHARS: usize = 500;
/// Longest content, in characters.
pub const CONTENT_MAX_CHARS: usize = 65_536;
/// Longest reference to an outside object (requester, assignee, organisation) or ticket type.
pub const REFERENCE_MAX_CHARS: usize = 255;
/// Longest external id (the ticket's id in the system it came from).
pub const EXTERNAL_ID_MAX_CHARS: usize = 255;
/// Most tags on one ticket.
pub const MAX_TAGS: usize = 100;
/// Longest tag.
pub const TAG_MAX_CHARS: usize = 100;
/// Most custom properties on one ticket.
pub const MAX_PROPERTIES: usize = 1_000;
/// Longest property name.
pub const PROPERTY_NAME_MAX_CHARS: usize = 100;
/// Longest property value.
pub const PROPERTY_VALUE_MAX_CHARS: usize = 65_536;

/// How urgent a ticket is; ordered from least to most urgent (rule conditions compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    /// The stored spelling, HubSpot's option values.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Urgent => "URGENT",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "LOW" => Some(Self::Low),
            "MEDIUM" => Some(Self::Medium),
            "HIGH" => Some(Self::High),
            "URGENT" => Some(Self::Urgent),
            _ => None,
        }
    }
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: i64,
    pub subject: String,
    pub content: String,
    pub pipeline_id: i64,
    pub stage_id: i64,
    pub priority: Option<Priority>,
    pub requester_id: String,
    pub assignee_id: String,
    pub organization_id: String,
    pub ticket_type: String,
    pub tags: Vec<String>,
    /// Defaulted when reading snapshots stored before tickets had projects.
    #[serde(default)]
    pub project_id: String,
    /// The ticket's id in the system it came from; empty: none. Unique among tickets when set. Defaulted when
    /// reading snapshots stored before tickets had external ids.
    #[serde(default)]
    pub external_id: String,
    pub properties: BTreeMap<String, String>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub close_time: Option<DateTime<Utc>>,
    pub archive_time: Option<DateTime<Utc>>,
    /// Write counter behind the etag.
    pub version: i64,
}

impl Ticket {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "ticket";

    /// The current etag.
    pub fn etag(&self) -> String {
        super::etag::etag(Self::RESOURCE, self.id, self.version)
    }

    /// Whether the ticket is in the trash.
    pub fn archived(&self) -> bool {
        self.archive_time.is_some()
    }
}

/// When a ticket entering a stage of `state` counts as closed: entering a CLOSED stage sets the close time,
/// moving between CLOSED stages keeps the first one, and an OPEN stage clears it.
pub fn close_time_after(
    previous: Option<DateTime<Utc>>,
    state: TicketState,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match state {
        TicketState::Closed => Some(previous.unwrap_or(now)),
        TicketState::Open => None,
    }
}

/// Parses a subject: trimmed, required, at most [`SUBJECT_MAX_CHARS`].
pub fn parse_subject(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid("subject", "is required"));
    }
    check_length("subject", trimmed, SUBJECT_MAX_CHARS)?;
    Ok(trimmed.to_owned())
}

/// Parses the free text of a ticket.
pub fn parse_content(raw: String) -> Result<String> {
    check_length("content", &raw, CONTENT_MAX_CHARS)?;
    Ok(raw)
}

/// Parses an id of an outside object or a ticket type, reported as `field`; empty means none.
pub fn parse_reference(field: &str, raw: String) -> Result<String> {
    let trimmed = raw.trim();
    check_length(field, trimmed, REFERENCE_MAX_CHARS)?;
    Ok(trimmed.to_owned())
}

/// Parses an external id: trimmed, at most [`EXTERNAL_ID_MAX_CHARS`], no control characters (an id is
/// matched exactly, so an invisible character would make two ids that look alike different); empty means none.
pub fn parse_external_id(raw: String) -> Result<String> {
    let trimmed = raw.trim();
    super::text::check_identifier("external_id", trimmed, EXTERNAL_ID_MAX_CHARS, false)?;
    Ok(trimmed.to_owned())
}

/// Parses tags: trimmed, non-empty, de-duplicated and sorted so equal sets compare equal.
pub fn parse_tags(raw: Vec<String>) -> Result<Vec<String>> {
    let mut tags = Vec::with_capacity(raw.len());
    for (index, tag) in raw.iter().enumerate() {
        let field = format!("tags[{index}]");
        let trimmed = tag.trim();
        if trimmed.is_empty() {
            return Err(Error::invalid(field, "a tag must not be empty"));
        }
        check_length(&field, trimmed, TAG_MAX_CHARS)?;
        tags.push(trimmed.to_owned());
    }
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags, got {}", tags.len()),
        ));
    }
    Ok(tags)
}

/// Checks one custom property; values are kept as given until typed properties exist.
pub fn check_property(name: &str, value: &str) -> Result<()> {
    let field = format!("properties.{name}");
    if name.is_empty() {
        return Err(Error::invalid(
            "properties",
            "a property name must not be empty",
        ));
    }
    if name.chars().count() > PROPERTY_NAME_MAX_CHARS {
        return Err(Error::invalid(
            field,
            format!("a property name must be at most {PROPERTY_NAME_MAX_CHARS} characters"),
        ));
    }
    check_length(&field, value, PROPERTY_VALUE_MAX_CHARS)
}

/// Checks a whole property map.
pub fn parse_properties(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    check_property_count(raw.len())?;
    for (name, value) in &raw {
        check_property(name, value)?;
    }
    Ok(raw)
}

/// Refuses more than [`MAX_PROPERTIES`] properties on one ticket.
pub fn check_property_count(count: usize) -> Result<()> {
    if count > MAX_PROPERTIES {
        return Err(Error::invalid(
            "properties",
            format!("at most {MAX_PROPERTIES} properties, got {count}"),
        ));
    }
    Ok(())
}

fn check_length(field: &str, value: &str, max: usize) -> Result<()> {
    let length = value.chars().count();
    if length > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters, got {length}"),
        ));
    }
    Ok(())
}

/// A validated ticket to create. `pipeline_id`/`stage_id` of `None` mean the defaults.
#[derive(Debug, Clone)]
pub struct TicketDraft {
    pub subject: String,
    pub content: String,
    pub pipeline_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub priority: Option<Priority>,
    pub requester_id: String,
    pub assignee_id: String,
    pub organization_id: String,
    pub ticket_type: String,
    pub tags: Vec<String>,
    pub project_id: String,
    /// Empty: none.
    pub external_id: String,
    pub properties: BTreeMap<String, String>,
}

impl TicketDraft {
    /// The fields the draft sets (taken apart whole, so a new field must be listed here to compile).
    pub fn fields_set(&self) -> Vec<TicketField> {
        let Self {
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
        } = self;
        let core = [
            (!subject.is_empty(), TicketField::Subject),
            (!content.is_empty(), TicketField::Content),
            (pipeline_id.is_some(), TicketField::PipelineId),
            (stage_id.is_some(), TicketField::StageId),
            (priority.is_some(), TicketField::Priority),
            (!requester_id.is_empty(), TicketField::RequesterId),
            (!assignee_id.is_empty(), TicketField::AssigneeId),
            (!organization_id.is_empty(), TicketField::OrganizationId),
            (!ticket_type.is_empty(), TicketField::TicketType),
            (!tags.is_empty(), TicketField::Tags),
            (!project_id.is_empty(), TicketField::ProjectId),
            (!external_id.is_empty(), TicketField::ExternalId),
        ];
        TicketField::listed(core, properties.keys())
    }
}

/// Validated changes to a ticket; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TicketChanges {
    pub subject: Option<String>,
    pub content: Option<String>,
    pub pipeline_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub priority: Option<Option<Priority>>,
    pub requester_id: Option<String>,
    pub assignee_id: Option<String>,
    pub organization_id: Option<String>,
    pub ticket_type: Option<String>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    /// An external id the request repeats. It is set on create only, so it must equal the stored one, and
    /// then changes nothing: a client may send back the ticket it read.
    pub external_id: Option<String>,
    /// Replaces the whole map.
    pub properties: Option<BTreeMap<String, String>>,
    /// Sets (`Some`) or removes (`None`) single properties, after `properties` is applied.
    pub property_updates: BTreeMap<String, Option<String>>,
}

impl TicketChanges {
    /// The fields the changes touch (taken apart whole, so a new field must be listed here to compile).
    pub fn fields(&self) -> Vec<TicketField> {
        let Self {
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
            property_updates,
        } = self;
        let core = [
            (subject.is_some(), TicketField::Subject),
            (content.is_some(), TicketField::Content),
            (pipeline_id.is_some(), TicketField::PipelineId),
            (stage_id.is_some(), TicketField::StageId),
            (priority.is_some(), TicketField::Priority),
            (requester_id.is_some(), TicketField::RequesterId),
            (assignee_id.is_some(), TicketField::AssigneeId),
            (organization_id.is_some(), TicketField::OrganizationId),
            (ticket_type.is_some(), TicketField::TicketType),
            (tags.is_some(), TicketField::Tags),
            (project_id.is_some(), TicketField::ProjectId),
            (external_id.is_some(), TicketField::ExternalId),
            (properties.is_some(), TicketField::Properties),
        ];
        TicketField::listed(core, property_updates.keys())
    }

    /// Changes that make a ticket what `draft` describes, every field and the whole property map (an import
    /// overwriting what it imported before). The draft is taken apart whole, so a new field must be decided here.
    pub fn replacing(draft: TicketDraft) -> Self {
        let TicketDraft {
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
            properties,
            external_id,
        } = draft;
        Self {
            // The ticket was found by it, so this only restates it.
            external_id: Some(external_id),
            subject: Some(subject),
            content: Some(content),
            pipeline_id,
            stage_id,
            priority: Some(priority),
            requester_id: Some(requester_id),
            assignee_id: Some(assignee_id),
            organization_id: Some(organization_id),
            ticket_type: Some(ticket_type),
            tags: Some(tags),
            project_id: Some(project_id),
            properties: Some(properties),
            property_updates: BTreeMap::new(),
        }
    }

    /// Applies every change except the placement (`pipeline_id`, `stage_id`), which needs the pipeline.
    pub fn apply_fields(self, ticket: &mut Ticket) -> Result<()> {
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *slot = value;
            }
        }
        if let Some(external_id) = self.external_id
            && external_id != ticket.external_id
        {
            return Err(Error::invalid(
                "external_id",
                format!(
                    "is set on create only: ticket {} has external_id {:?}, not {external_id:?}",
                    ticket.id, ticket.external_id
                ),
            ));
        }
        set(&mut ticket.subject, self.subject);
        set(&mut ticket.content, self.content);
        set(&mut ticket.priority, self.priority);
        set(&mut ticket.requester_id, self.requester_id);
        set(&mut ticket.assignee_id, self.assignee_id);
        set(&mut ticket.organization_id, self.organization_id);
        set(&mut ticket.ticket_type, self.ticket_type);
        set(&mut ticket.tags, self.tags);
        set(&mut ticket.project_id, self.project_id);
        set(&mut ticket.properties, self.properties);
        for (name, value) in self.property_updates {
            match value {
                Some(value) => ticket.properties.insert(name, value),
                None => ticket.properties.remove(&name),
            };
        }
        check_property_count(ticket.properties.len())
    }
}
