//! The history of a ticket: one event per change, written in the same transaction as the change. The table
//! doubles as the outbox that live streams read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use super::{association::Association, comment::Comment, field::TicketField, ticket::Ticket};

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumIter)]
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

/// Whether a write's events notify the people around the ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notify {
    /// The server decides ([`SideEffects::settle`]); never stored.
    #[default]
    Unspecified,
    All,
    None,
}

impl Notify {
    /// The stored spelling; `Unspecified` is settled before anything is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "UNSPECIFIED",
            Self::All => "ALL",
            Self::None => "NONE",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        Some(match value {
            "ALL" => Self::All,
            "NONE" => Self::None,
            _ => return None,
        })
    }
}

/// What a write asks of everything downstream of its events (notifications, rules, webhooks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideEffects {
    pub notify: Notify,
    pub skip_automations: bool,
}

impl SideEffects {
    /// No notification and no automation: archived chats, imports.
    pub const SILENT: Self = Self {
        notify: Notify::None,
        skip_automations: true,
    };

    /// The policy recorded on a write's events. A ticket created straight into a CLOSED stage notifies nobody
    /// unless the write asked for it: "your ticket was solved" about a ticket nobody saw open is the trap.
    pub fn settle(self, creates_closed_ticket: bool) -> Self {
        let notify = match self.notify {
            Notify::Unspecified if creates_closed_ticket => Notify::None,
            Notify::Unspecified => Notify::All,
            asked => asked,
        };
        Self { notify, ..self }
    }
}

/// One field's old and new value in string form; empty means none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: TicketField,
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
    /// What the write that produced the event chose, as settled when it was recorded (never `Unspecified`).
    pub side_effects: SideEffects,
    /// For a change made by an automation rule: the event that set the rule off.
    pub cause_event_id: Option<i64>,
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

/// The client-visible fields that differ between `before` (none for a new ticket) and `after`: every field
/// whose rules say history records it, then each custom property either side has.
pub fn diff(before: Option<&Ticket>, after: &Ticket) -> Vec<FieldChange> {
    let no_properties = Default::default();
    let old_properties = before.map_or(&no_properties, |t| &t.properties);
    let property_names: BTreeSet<&String> = old_properties
        .keys()
        .chain(after.properties.keys())
        .collect();
    TicketField::core()
        .filter(|field| field.rules().diffed)
        .chain(
            property_names
                .into_iter()
                .map(|name| TicketField::Property(name.clone())),
        )
        .filter_map(|field| {
            let old_value = before
                .map(|ticket| field.text(ticket, history_time))
                .unwrap_or_default();
            let new_value = field.text(after, history_time);
            (old_value != new_value).then_some(FieldChange {
                field,
                old_value,
                new_value,
            })
        })
        .collect()
}

/// A time as history records it (see [`time_text`]).
pub fn history_time(time: DateTime<Utc>) -> String {
    time_text(Some(time))
}

/// A time as history records it: RFC 3339 UTC with microseconds, empty for none.
pub fn time_text(time: Option<DateTime<Utc>>) -> String {
    time.map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(notify: Notify, skip_automations: bool) -> SideEffects {
        SideEffects {
            notify,
            skip_automations,
        }
    }

    #[test]
    fn an_unspecified_write_notifies_unless_it_creates_a_closed_ticket() {
        assert_eq!(
            SideEffects::default().settle(false),
            asked(Notify::All, false)
        );
        assert_eq!(
            SideEffects::default().settle(true),
            asked(Notify::None, false)
        );
    }

    #[test]
    fn what_the_write_asked_wins_and_skip_automations_is_kept() {
        for closed in [false, true] {
            assert_eq!(
                asked(Notify::All, true).settle(closed),
                asked(Notify::All, true)
            );
            assert_eq!(
                asked(Notify::None, false).settle(closed),
                asked(Notify::None, false)
            );
        }
    }

    #[test]
    fn every_settled_notify_reads_back_and_unspecified_never_does() {
        for notify in [Notify::All, Notify::None] {
            assert_eq!(Notify::from_stored(notify.as_str()), Some(notify));
        }
        assert_eq!(Notify::from_stored(Notify::Unspecified.as_str()), None);
    }
}
