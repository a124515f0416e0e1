//! `watch tickets`: one line per event as it commits, coloured by kind, resuming where the stream broke off.

use std::time::Duration;

use ticketd::proto::{
    CommentVisibility, FieldChange, TicketEvent, TicketEventKind, WatchTicketsRequest,
};
use tonic::Code;

use crate::{
    cli::{WatchFormat, WatchTickets},
    client::Server,
    error::CliError,
    output::outln,
    output::{Colour, paint, stdout_colour, to_json_line, truncate},
};

/// The trailer a broken-off stream carries: reconnect after this event id.
const RESUME_TRAILER: &str = "ticketd-resume-after-event-id";
/// Reconnects in a row (without an event in between) before giving up.
const MAX_RECONNECTS: u32 = 5;
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Streams until the server ends the stream or it breaks for good.
pub async fn watch(server: &Server, args: WatchTickets) -> Result<(), CliError> {
    let colour = stdout_colour();
    let mut after = args.after;
    let mut reconnects = 0;
    loop {
        let request = WatchTicketsRequest {
            ticket_ids: args.tickets.clone(),
            after_event_id: after,
            ..WatchTicketsRequest::default()
        };
        let outcome = match server.tickets().watch_tickets(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        // A heartbeat only says the stream is alive: nothing to print or resume from.
                        Ok(Some(event)) if event.heartbeat => reconnects = 0,
                        Ok(Some(event)) => {
                            reconnects = 0;
                            after = after.max(event.event_id);
                            match args.format {
                                WatchFormat::Text => outln!("{}", event_line(&event, colour)),
                                WatchFormat::Json => outln!("{}", to_json_line(&event)?),
                            }
                        }
                        Ok(None) => return Ok(()),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        // Only a stream the server ended on purpose says where to resume; anything else is the user's to see.
        let Some(resume) = resume_after(&outcome) else {
            return Err(outcome.into());
        };
        if reconnects >= MAX_RECONNECTS {
            return Err(outcome.into());
        }
        reconnects += 1;
        after = after.max(resume);
        eprintln!(
            "watch: the stream ended ({}); resuming after event {after}",
            outcome.message()
        );
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// The event id a stream ended with UNAVAILABLE says to resume after.
fn resume_after(status: &tonic::Status) -> Option<i64> {
    if status.code() != Code::Unavailable {
        return None;
    }
    status
        .metadata()
        .get(RESUME_TRAILER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
}

/// The kind's name, padded so that lines line up, and its colour.
fn kind_label(kind: i32) -> (&'static str, Colour) {
    match TicketEventKind::try_from(kind) {
        Ok(TicketEventKind::Created) => ("CREATED", Colour::Green),
        Ok(TicketEventKind::Updated) => ("UPDATED", Colour::Yellow),
        Ok(TicketEventKind::StageChanged) => ("STAGE_CHANGED", Colour::Cyan),
        Ok(TicketEventKind::Archived) => ("ARCHIVED", Colour::Red),
        Ok(TicketEventKind::Restored) => ("RESTORED", Colour::Green),
        Ok(TicketEventKind::CommentAdded) => ("COMMENT_ADDED", Colour::Blue),
        Ok(TicketEventKind::AssociationAdded) => ("ASSOCIATION_ADDED", Colour::Magenta),
        Ok(TicketEventKind::AssociationRemoved) => ("ASSOCIATION_REMOVED", Colour::Magenta),
        Ok(TicketEventKind::Unspecified) | Err(_) => ("EVENT", Colour::Bold),
    }
}

/// `#42 2024-05-01T12:00:00Z UPDATED ticket/7 by agent-7: priority: LOW -> HIGH`.
pub fn event_line(event: &TicketEvent, colour: bool) -> String {
    let (kind, kind_colour) = kind_label(event.kind);
    let time = event
        .create_time
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut line = format!(
        "#{} {time} {} ticket/{}",
        event.event_id,
        paint(&format!("{kind:<19}"), kind_colour, colour),
        event.ticket_id
    );
    if !event.actor_id.is_empty() {
        line.push_str(&format!(" by {}", event.actor_id));
    }
    let details = event_details(event);
    if !details.is_empty() {
        line.push_str(": ");
        line.push_str(&details);
    }
    line
}

/// What changed, in a few words.
fn event_details(event: &TicketEvent) -> String {
    if let Some(comment) = &event.comment {
        let internal = comment.visibility == CommentVisibility::Internal as i32;
        return format!(
            "comment/{}{} {}",
            comment.id,
            if internal { " (internal)" } else { "" },
            quote(&truncate(&comment.body.replace('\n', " "), 60))
        );
    }
    if let Some(association) = &event.association {
        let target = association
            .to
            .as_ref()
            .map(|to| format!("{}/{}", to.object_type, to.object_id))
            .unwrap_or_default();
        return if association.label.is_empty() {
            target
        } else {
            format!("{target} {}", quote(&association.label))
        };
    }
    event
        .changes
        .iter()
        .map(change_text)
        .collect::<Vec<_>>()
        .join(", ")
}

fn change_text(change: &FieldChange) -> String {
    let (old, new) = (
        truncate(&change.old_value, 40),
        truncate(&change.new_value, 40),
    );
    match (old.is_empty(), new.is_empty()) {
        (true, _) => format!("{}={}", change.field, quote(&new)),
        (false, true) => format!("{}: {} -> (none)", change.field, quote(&old)),
        (false, false) => format!("{}: {} -> {}", change.field, quote(&old), quote(&new)),
    }
}

/// Quoted when white space or emptiness would make the line ambiguous.
fn quote(text: &str) -> String {
    if text.is_empty() || text.contains(char::is_whitespace) || text.contains('"') {
        format!("{text:?}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_is_one_readable_line() {
        let event = TicketEvent {
            event_id: 42,
            ticket_id: 7,
            kind: TicketEventKind::Updated as i32,
            actor_id: "agent-7".into(),
            changes: vec![
                FieldChange {
                    field: "priority".into(),
                    old_value: "LOW".into(),
                    new_value: "HIGH".into(),
                },
                FieldChange {
                    field: "subject".into(),
                    old_value: String::new(),
                    new_value: "printer on fire".into(),
                },
            ],
            ..TicketEvent::default()
        };
        let line = event_line(&event, false);
        assert!(line.starts_with("#42 "), "{line}");
        assert!(line.contains("UPDATED"), "{line}");
        assert!(
            line.ends_with(
                "ticket/7 by agent-7: priority: LOW -> HIGH, subject=\"printer on fire\""
            ),
            "{line}"
        );
        assert!(!line.contains('\x1b'));
        assert!(event_line(&event, true).contains("\x1b[33m"));
    }
}
