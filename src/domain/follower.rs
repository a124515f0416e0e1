//! Followers: people who follow a ticket, and users or organizations who follow a project.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result, ticket::REFERENCE_MAX_CHARS};

/// Someone following a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follower {
    pub ticket_id: i64,
    pub follower_id: String,
    pub create_time: DateTime<Utc>,
}

/// Who follows a project: one user, or every member of an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FollowerKind {
    User,
    Organization,
}

impl FollowerKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Organization => "ORGANIZATION",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "USER" => Some(Self::User),
            "ORGANIZATION" => Some(Self::Organization),
            _ => None,
        }
    }
}

/// A user or organization following a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFollower {
    pub project_id: String,
    pub kind: FollowerKind,
    pub follower_id: String,
    pub create_time: DateTime<Utc>,
}

/// Parses a required id of an outside object (a person, organization or project).
pub fn parse_id(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if value.chars().count() > REFERENCE_MAX_CHARS || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("must be at most {REFERENCE_MAX_CHARS} printable characters"),
        ));
    }
    Ok(value.to_owned())
}
