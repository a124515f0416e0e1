//! The history of a ticket: one event per change, written in the same transaction as the change. The table
//! doubles as the outbox that live streams read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{association::Association, comment::Comment, ticket::Ticket};

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Created,
    Updated,
    StageChanged,
    Archived,
    Restored,
    CommentAdded,
    AssociationAdded,
    AssociationRemoved,
}

impl EventKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::StageChanged => "STAGE_CHANGED",
            Self::Archived => "ARCHIVED",
            Self::Restored => "RESTORED",
            Self::CommentAdded => "COMMENT_ADDED",
            Self::AssociationAdded => "ASSOCIATION_ADDED",
            Self::AssociationRemoved => "ASSOCIATION_REMOVED",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        Some(match value {
            "CREATED" => Self::Created,
            "UPDATED" => Self::Updated,
            "STAGE_CHANGED" => Self::StageChanged,
            "ARCHIVED" => Self::Archived,
            "RESTORED" => Self::Restored,
            "COMMENT_ADDED" => Self::CommentAdded,
            "ASSOCIATION_ADDED" => Self::AssociationAdded,
            "ASSOCIATION_REMOVED" => Self::AssociationRemoved,
            _ => return None,
        })
    }
}

/// One field's old and new value in string form; empty means none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old_value: String,
    pub new_value: String,
}

/// What an event carries besides field changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventDetail {
    Comment(Comment),
    Association(Association),
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    pub event_id: i64,
    pub ticket_id: i64,
    pub kind: EventKind,
    pub changes: Vec<FieldChange>,
    pub actor_id: String,
    pub create_time: DateTime<Utc>,
    pub detail: Option<EventDetail>,
    /// The ticket as it was when the change committed.
    pub ticket: Option<Ticket>,
}

/// An event about to be written; the database assigns its id.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub ticket_id: i64,
    pub kind: EventKind,
    pub changes: Vec<FieldChange>,
    pub detail: Option<EventDetail>,
}

impl NewEvent {
    /// The event for a write that turned `before` into `after`: STAGE_CHANGED when the stage moved, else
    /// UPDATED; `None` when no field changed.
    pub fn for_update(before: &Ticket, after: &Ticket) -> Option<Self> {
        let changes = diff(Some(before), after);
        if changes.is_empty() {
            return None;
        }
        let kind = if before.stage_id != after.stage_id {
            EventKind::StageChanged
        } else {
            EventKind::Updated
        };
        Some(Self {
            ticket_id: after.id,
            kind,
            changes,
            detail: None,
        })
    }

    /// The CREATED event, listing every field the new ticket has.
    pub fn created(ticket: &Ticket) -> Self {
        Self {
            ticket_id: ticket.id,
            kind: EventKind::Created,
            changes: diff(None, ticket),
            detail: None,
        }
    }

    /// An event with no field changes (archive, restore, comments, associations).
    pub fn plain(
        ticket_id: i64,
        kind: EventKind,
        changes: Vec<FieldChange>,
        detail: Option<EventDetail>,
    ) -> Self {
        Self {
            ticket_id,
            kind,
            changes,
            detail,
        }
    }
}

/// The client-visible fields that differ between `before` (none for a new ticket) and `after`.
pub fn diff(before: Option<&Ticket>, after: &Ticket) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut compare = |field: &str, old: String, new: String| {
        if old != new {
            changes.push(FieldChange {
                field: field.to_owned(),
                old_value: old,
                new_value: new,
            });
        }
    };
    let old = |read: fn(&Ticket) -> String| before.map(read).unwrap_or_default();
    compare("subject", old(|t| t.subject.clone()), after.subject.clone());
    compare("content", old(|t| t.content.clone()), after.content.clone());
    compare(
        "pipeline_id",
        old(|t| t.pipeline_id.to_string()),
        after.pipeline_id.to_string(),
    );
    compare(
        "stage_id",
        old(|t| t.stage_id.to_string()),
        after.stage_id.to_string(),
    );
    compare("priority", old(priority_text), priority_text(after));
    compare(
        "requester_id",
        old(|t| t.requester_id.clone()),
        after.requester_id.clone(),
    );
    compare(
        "assignee_id",
        old(|t| t.assignee_id.clone()),
        after.assignee_id.clone(),
    );
    compare(
        "organization_id",
        old(|t| t.organization_id.clone()),
        after.organization_id.clone(),
    );
    compare(
        "ticket_type",
        old(|t| t.ticket_type.clone()),
        after.ticket_type.clone(),
    );
    compare("tags", old(|t| t.tags.join(",")), after.tags.join(","));
    compare(
        "project_id",
        old(|t| t.project_id.clone()),
        after.project_id.clone(),
    );
    compare("close_time", old(close_time_text), close_time_text(after));
    let empty = Default::default();
    let old_properties = before.map_or(&empty, |t| &t.properties);
    let names: std::collections::BTreeSet<&String> = old_properties
        .keys()
        .chain(after.properties.keys())
        .collect();
    for name in names {
        compare(
            &format!("properties.{name}"),
            old_properties.get(name).cloned().unwrap_or_default(),
            after.properties.get(name).cloned().unwrap_or_default(),
        );
    }
    changes
}

fn priority_text(ticket: &Ticket) -> String {
    ticket
        .priority
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

fn close_time_text(ticket: &Ticket) -> String {
    time_text(ticket.close_time)
}

/// A time as history records it: RFC 3339 UTC with microseconds, empty for none.
pub fn time_text(time: Option<DateTime<Utc>>) -> String {
    time.map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}
