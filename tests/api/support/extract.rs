//! Values pulled out of responses in forms tests compare and print: ids, timestamps, event kinds, changes and
//! stages.

use prost_types::Timestamp;
use ticketd::proto::{FieldChange, Pipeline, Stage, Ticket, TicketEvent, TicketEventKind};

/// The ids of `tickets`, in their order.
pub fn ids(tickets: &[Ticket]) -> Vec<i64> {
    tickets.iter().map(|t| t.id).collect()
}

/// The sorted, de-duplicated ids.
pub fn sorted_ids(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The event ids, in the order received.
pub fn event_ids(events: &[TicketEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event_id).collect()
}

/// The kinds of `events`, in their order.
pub fn kinds(events: &[TicketEvent]) -> Vec<TicketEventKind> {
    events.iter().map(|e| e.kind()).collect()
}

/// The fields an event changed, in its order.
pub fn changed_fields(event: &TicketEvent) -> Vec<&str> {
    event.changes.iter().map(|c| c.field.as_str()).collect()
}

/// The event as ListTicketHistory reports it (which carries no ticket).
pub fn without_ticket(event: &TicketEvent) -> TicketEvent {
    TicketEvent {
        ticket: None,
        ..event.clone()
    }
}

/// The events as ListTicketHistory reports them (without tickets).
pub fn without_tickets(events: &[TicketEvent]) -> Vec<TicketEvent> {
    events.iter().map(without_ticket).collect()
}

/// The change of `field` in `event`, panicking with the event (without its ticket) when there is none.
#[track_caller]
pub fn change_of<'a>(event: &'a TicketEvent, field: &str) -> &'a FieldChange {
    event
        .changes
        .iter()
        .find(|c| c.field == field)
        .unwrap_or_else(|| panic!("no change of {field:?} in {:?}", without_ticket(event)))
}

/// A set timestamp as `(seconds, nanos)`, comparable and printable; panics when unset.
#[track_caller]
pub fn time(timestamp: &Option<Timestamp>) -> (i64, i32) {
    let t = timestamp.expect("timestamp is not set");
    (t.seconds, t.nanos)
}

/// RFC 3339 (UTC, nanoseconds) form of a set timestamp.
#[track_caller]
pub fn rfc3339(timestamp: &Option<Timestamp>) -> String {
    let t = timestamp.expect("timestamp is not set");
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .expect("timestamp in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The stage of `pipeline` labelled `label`; panics when there is none.
#[track_caller]
pub fn stage_labelled<'a>(pipeline: &'a Pipeline, label: &str) -> &'a Stage {
    pipeline
        .stages
        .iter()
        .find(|s| s.label == label)
        .unwrap_or_else(|| panic!("no stage {label:?} in {pipeline:?}"))
}
