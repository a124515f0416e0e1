//! The agent directory: the people tickets are assigned to, found by the id their tokens carry or by e-mail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Longest agent id; the same bound as any other reference to a person (`assignee_id`).
pub const AGENT_ID_MAX_CHARS: usize = 255;
/// Longest e-mail address (RFC 5321 path limit less its angle brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// Longest display name.
pub const DISPLAY_NAME_MAX_CHARS: usize = 200;

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The id used in `Ticket.assignee_id` and in the agent's token `sub`.
    pub id: String,
    /// As the admin sent it; uniqueness ignores letter case (see [`email_key`]).
    pub email: String,
    pub display_name: String,
    /// False once deactivated: kept for history and assignments, never matched by e-mail.
    pub active: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub etag: String,
}

impl Agent {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "agent";

    /// The etag of version `version` of agent `id`.
    pub fn etag_of(id: &str, version: i64) -> String {
        super::etag::etag(Self::RESOURCE, id, version)
    }
}

/// An agent to create; it starts active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    pub id: String,
    pub email: String,
    pub display_name: String,
}

impl NewAgent {
    /// Checks every field; errors name the field relative to the agent (`email`).
    pub fn check(&self) -> Result<()> {
        check_id(&self.id)?;
        check_email(&self.email)?;
        check_display_name(&self.display_name)
    }
}

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentChanges {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub active: Option<bool>,
}

impl AgentChanges {
    /// Checks the fields that change.
    pub fn check(&self) -> Result<()> {
        if let Some(email) = &self.email {
            check_email(email)?;
        }
        if let Some(display_name) = &self.display_name {
            check_display_name(display_name)?;
        }
        Ok(())
    }
}

/// Which agents a listing returns; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFilter {
    /// Compared as [`email_key`]s.
    pub email: Option<String>,
    pub active: Option<bool>,
}

/// The form under which addresses are compared and kept unique. Full Unicode lower-casing rather than ASCII:
/// the database compares the stored key byte for byte, so one rule, applied here only, holds on every backend.
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// An agent id: required, bounded, and free of white space, which a token's `sub` never holds and which would
/// make `assignee_id` filters ambiguous.
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("id", "is required"));
    }
    if id.chars().count() > AGENT_ID_MAX_CHARS {
        return Err(Error::invalid(
            "id",
            format!("must be at most {AGENT_ID_MAX_CHARS} characters"),
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(
            "id",
            "must not contain white space or control characters",
        ));
    }
    Ok(())
}

/// An agent's address (see [`check_email_at`]); errors name `email`.
pub fn check_email(email: &str) -> Result<()> {
    check_email_at("email", email)
}

/// A plausible address: one `@` between a non-empty local part and a dotted domain, no white space. Whether
/// mail reaches it is the directory's owners' business; the check only catches typing and pasting mistakes.
/// Errors name `field`.
pub fn check_email_at(field: &str, email: &str) -> Result<()> {
    let invalid = |why: &str| Err(Error::invalid(field, why.to_owned()));
    if email.is_empty() {
        return invalid("is required");
    }
    if email.chars().count() > EMAIL_MAX_CHARS {
        return invalid(&format!("must be at most {EMAIL_MAX_CHARS} characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("must not contain white space or control characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("must be an address of the form name@example.com");
    };
    if domain.contains('@') {
        return invalid("must hold exactly one '@'");
    }
    if local.is_empty() {
        return invalid("needs a name before the '@'");
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return invalid("needs a domain with a dot after the '@', such as example.com");
    }
    Ok(())
}

/// A display name: optional, bounded.
pub fn check_display_name(display_name: &str) -> Result<()> {
    if display_name.chars().count() > DISPLAY_NAME_MAX_CHARS {
        return Err(Error::invalid(
            "display_name",
            format!("must be at most {DISPLAY_NAME_MAX_CHARS} characters"),
        ));
    }
    if display_name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<()>) -> String {
        match result {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn plausible_addresses_pass() {
        for email in [
            "ann@example.com",
            "Ann.Lee+tickets@Support.Example.co.uk",
            "jörg@bücher.de",
        ] {
            assert!(check_email(email).is_ok(), "{email}");
        }
    }

    #[test]
    fn malformed_addresses_name_the_field() {
        let long = format!("{}@example.com", "a".repeat(EMAIL_MAX_CHARS));
        for email in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "ann@@example.com",
            "ann@a@example.com",
            "ann @example.com",
            "ann@example..com",
            "ann@.example.com",
            "ann@example.com.",
            "ann@exa\u{7}mple.com",
            long.as_str(),
        ] {
            assert_eq!(field_of(check_email(email)), "email", "{email:?}");
        }
    }

    #[test]
    fn ids_are_required_bounded_and_unspaced() {
        assert!(check_id("agent-7").is_ok());
        assert!(check_id(&"a".repeat(AGENT_ID_MAX_CHARS)).is_ok());
        for id in [
            String::new(),
            "agent 7".to_owned(),
            "agent\t7".to_owned(),
            "a".repeat(AGENT_ID_MAX_CHARS + 1),
        ] {
            assert_eq!(field_of(check_id(&id)), "id", "{id:?}");
        }
    }

    #[test]
    fn display_names_are_bounded() {
        assert!(check_display_name("").is_ok());
        assert!(check_display_name(&"é".repeat(DISPLAY_NAME_MAX_CHARS)).is_ok());
        assert_eq!(
            field_of(check_display_name(&"é".repeat(DISPLAY_NAME_MAX_CHARS + 1))),
            "display_name"
        );
    }

    #[test]
    fn the_key_ignores_letter_case() {
        assert_eq!(
            email_key("Ann.LEE@Example.COM"),
            email_key("ann.lee@example.com")
        );
        assert_eq!(email_key("ÄNN@example.com"), "änn@example.com");
    }
}
