//! Comments: append-only notes on a ticket, public or internal.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result, ticket::CONTENT_MAX_CHARS};

/// Who may read a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// The customer sees it.
    Public,
    /// Agents only (Zendesk's private note).
    Internal,
}

impl Visibility {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Internal => "INTERNAL",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "PUBLIC" => Some(Self::Public),
            "INTERNAL" => Some(Self::Internal),
            _ => None,
        }
    }
}

/// A comment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: String,
    pub body: String,
    pub visibility: Visibility,
    pub create_time: DateTime<Utc>,
}

/// Parses a comment body: required, at most as long as ticket content.
pub fn parse_body(raw: String) -> Result<String> {
    if raw.trim().is_empty() {
        return Err(Error::invalid("body", "is required"));
    }
    let length = raw.chars().count();
    if length > CONTENT_MAX_CHARS {
        return Err(Error::invalid(
            "body",
            format!("must be at most {CONTENT_MAX_CHARS} characters, got {length}"),
        ));
    }
    Ok(raw)
}
