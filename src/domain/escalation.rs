//! Escalating chat conversations into tickets: what a chat tool hands over, how a transcript becomes a private
//! note, and how the assignee is chosen. The store makes it exactly-once (`store::escalation`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Error, Result, commands::NewTicket, event::SideEffects, ticket::CONTENT_MAX_CHARS};

/// Longest `source`: a chat tool's name.
pub const SOURCE_MAX_CHARS: usize = 64;
/// Longest `conversation_id`, and longest `message_id`.
pub const CONVERSATION_ID_MAX_CHARS: usize = 255;
/// Most messages one call may carry; a longer chat is handed over in several calls.
pub const TRANSCRIPT_MAX_MESSAGES: usize = 1_000;
/// Longest author name.
pub const AUTHOR_NAME_MAX_CHARS: usize = 200;
/// Longest message text: a ticket's content may hold it whole.
pub const MESSAGE_TEXT_MAX_CHARS: usize = CONTENT_MAX_CHARS;
/// The object type a ticket's link to its conversation uses (a HubSpot system type).
pub const CONVERSATION_OBJECT_TYPE: &str = "conversation";
/// The label of the system ticket→ticket type linking a follow-up to the ticket it follows.
pub const FOLLOW_UP_LABEL: &str = "follow_up_of";

/// Why a chat is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationMode {
    /// An agent escalated it: the ticket is open for work.
    Open,
    /// It ended and is filed: the ticket is created solved, silently.
    Archive,
}

/// Who wrote a transcript message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorKind {
    Visitor,
    Agent,
    Bot,
    System,
}

impl AuthorKind {
    /// As the transcript note names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Visitor => "Visitor",
            Self::Agent => "Agent",
            Self::Bot => "Bot",
            Self::System => "System",
        }
    }
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptMessage {
    pub message_id: String,
    pub author_kind: AuthorKind,
    pub author_name: String,
    pub text: String,
    pub sent_time: DateTime<Utc>,
}

impl TranscriptMessage {
    /// What identifies the message across calls: the tool's id, or else its time, author and text (a tool
    /// without ids resends the same messages, never edited ones).
    pub fn key(&self) -> String {
        if !self.message_id.is_empty() {
            return format!("id:{}", self.message_id);
        }
        let mut digest = Sha256::new();
        for part in [
            self.sent_time.timestamp_micros().to_string().as_str(),
            self.author_kind.label(),
            &self.author_name,
            &self.text,
        ] {
            // Length-prefixed, so no two different messages concatenate to the same bytes.
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part.as_bytes());
        }
        format!("sha256:{:x}", digest.finalize())
    }

    /// The message as one line of the note: `[2026-11-28 14:02 UTC] Visitor Jane Doe: …`.
    fn line(&self) -> String {
        let author = if self.author_name.is_empty() {
            self.author_kind.label().to_owned()
        } else {
            format!("{} {}", self.author_kind.label(), self.author_name)
        };
        format!(
            "[{}] {author}: {}",
            self.sent_time.format("%Y-%m-%d %H:%M UTC"),
            self.text
        )
    }
}

/// The private note holding the messages a call added, in the order they were sent.
pub fn transcript_note(
    source: &str,
    conversation_id: &str,
    messages: &[&TranscriptMessage],
) -> String {
    let mut note = format!("Transcript of {source} conversation {conversation_id}\n");
    for message in messages {
        note.push('\n');
        note.push_str(&message.line());
    }
    note
}

/// The requester and the person behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    pub id: String,
    pub email: String,
    pub name: String,
}

impl Requester {
    /// The ticket's `requester_id`: the given id, else one derived from the address; `None` when neither is set.
    pub fn requester_id(&self) -> Option<String> {
        if !self.id.is_empty() {
            Some(self.id.clone())
        } else if !self.email.is_empty() {
            Some(format!("email:{}", self.email.to_lowercase()))
        } else {
            None
        }
    }
}

/// A conversation handed over, checked.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub source: String,
    pub conversation_id: String,
    pub mode: EscalationMode,
    pub ticket: NewTicket,
    pub requester: Requester,
    pub agent_email: String,
    pub transcript: Vec<TranscriptMessage>,
    pub side_effects: SideEffects,
}

impl Escalation {
    /// The conversation as an association target: `<source>:<conversation_id>`.
    pub fn object_id(&self) -> String {
        format!("{}:{}", self.source, self.conversation_id)
    }

    /// The messages' latest time: an archived chat's ticket closes when the chat did.
    pub fn last_sent_time(&self) -> Option<DateTime<Utc>> {
        self.transcript
            .iter()
            .map(|message| message.sent_time)
            .max()
    }
}

/// How the new ticket's assignee was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignment {
    Explicit,
    MatchedAgent,
    NoAgentWithEmail,
    AgentInactive,
    /// An existing ticket was returned; its assignee was left alone.
    Unchanged,
}

/// What an escalation did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Escalated {
    pub ticket: super::ticket::Ticket,
    pub created: bool,
    pub assignment: Assignment,
    pub messages_added: usize,
}

/// A chat tool's name: lower_snake_case, at most [`SOURCE_MAX_CHARS`].
pub fn check_source(field: &str, source: &str) -> Result<()> {
    if super::text::is_lower_snake_case(source, SOURCE_MAX_CHARS) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{source:?} is not a lower_snake_case name of at most {SOURCE_MAX_CHARS} characters"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, text: &str) -> TranscriptMessage {
        TranscriptMessage {
            message_id: id.to_owned(),
            author_kind: AuthorKind::Visitor,
            author_name: "Jane Doe".to_owned(),
            text: text.to_owned(),
            sent_time: "2026-11-28T14:02:31Z".parse().expect("a valid time"),
        }
    }

    #[test]
    fn a_note_line_names_the_time_the_author_and_the_text() {
        let note = transcript_note("iadvize", "c-1", &[&message("m1", "my order is late")]);
        assert_eq!(
            note,
            "Transcript of iadvize conversation c-1\n\n[2026-11-28 14:02 UTC] Visitor Jane Doe: my order is late"
        );
    }

    #[test]
    fn messages_without_ids_are_told_apart_by_time_author_and_text() {
        let a = message("", "hello");
        let b = message("", "hello!");
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), message("", "hello").key());
        assert_eq!(message("m1", "x").key(), "id:m1");
    }

    #[test]
    fn sources_are_lower_snake_case() {
        assert!(check_source("source", "iadvize").is_ok());
        assert!(check_source("source", "live_chat2").is_ok());
        for bad in ["", "iAdvize", "2chat", "live-chat"] {
            assert!(check_source("source", bad).is_err(), "{bad}");
        }
    }
}
