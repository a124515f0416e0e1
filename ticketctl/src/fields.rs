//! `NAME=VALUE` onto a ticket: shared by `create --set`, `update --set` and the columns of a CSV import.

use std::str::FromStr;

use ticketd::proto::{Priority, Ticket};

use crate::error::CliError;

/// Splits `NAME=VALUE` (the value may itself contain `=`).
pub fn split_assignment(text: &str) -> Result<(&str, &str), CliError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        _ => Err(CliError::local(format!(
            "--set {text:?}: expected NAME=VALUE"
        ))),
    }
}

/// Sets one field (or custom property) of `ticket`; returns its update-mask path.
pub fn set_field(ticket: &mut Ticket, name: &str, value: &str) -> Result<String, CliError> {
    let text = || value.to_owned();
    let number = || {
        value
            .trim()
            .parse::<i64>()
            .map_err(|_| CliError::local(format!("{name}: expected a whole number, got {value:?}")))
    };
    let time = || {
        prost_types::Timestamp::from_str(value.trim()).map_err(|_| {
            CliError::local(format!(
                "{name}: expected an RFC 3339 time such as 2024-05-01T12:00:00Z, got {value:?}"
            ))
        })
    };
    match name {
        "subject" => ticket.subject = text(),
        "content" => ticket.content = text(),
        "requester_id" => ticket.requester_id = text(),
        "assignee_id" => ticket.assignee_id = text(),
        "organization_id" => ticket.organization_id = text(),
        "ticket_type" => ticket.ticket_type = text(),
        "project_id" => ticket.project_id = text(),
        "external_id" => ticket.external_id = text(),
        "pipeline_id" => ticket.pipeline_id = number()?,
        "stage_id" => ticket.stage_id = number()?,
        "priority" => ticket.priority = parse_priority(value)? as i32,
        "tags" => {
            ticket.tags = value
                .split([',', ';'])
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect();
        }
        "create_time" => ticket.create_time = Some(time()?),
        "update_time" => ticket.update_time = Some(time()?),
        "close_time" => ticket.close_time = Some(time()?),
        "id" | "etag" | "archived" | "archive_time" => {
            return Err(CliError::local(format!("{name} cannot be set")));
        }
        other => {
            let property = other.strip_prefix("properties.").unwrap_or(other);
            if property.is_empty() {
                return Err(CliError::local(format!("{other:?} names no property")));
            }
            ticket
                .properties
                .insert(property.to_owned(), value.to_owned());
            return Ok(format!("properties.{property}"));
        }
    }
    Ok(name.to_owned())
}

/// `low`, `medium`, `high`, `urgent` (any case, with or without `PRIORITY_`); empty is unspecified.
pub fn parse_priority(value: &str) -> Result<Priority, CliError> {
    let upper = value.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("PRIORITY_").unwrap_or(&upper);
    match name {
        "" | "UNSPECIFIED" => Ok(Priority::Unspecified),
        "LOW" => Ok(Priority::Low),
        "MEDIUM" => Ok(Priority::Medium),
        "HIGH" => Ok(Priority::High),
        "URGENT" => Ok(Priority::Urgent),
        _ => Err(CliError::local(format!(
            "priority {value:?}: expected low, medium, high or urgent"
        ))),
    }
}

/// A priority as people read it: `HIGH`, or empty when unspecified.
pub fn priority_label(priority: i32) -> &'static str {
    match Priority::try_from(priority) {
        Ok(Priority::Low) => "LOW",
        Ok(Priority::Medium) => "MEDIUM",
        Ok(Priority::High) => "HIGH",
        Ok(Priority::Urgent) => "URGENT",
        Ok(Priority::Unspecified) | Err(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_fields_and_properties() {
        let mut ticket = Ticket::default();
        assert_eq!(
            set_field(&mut ticket, "priority", "high").unwrap(),
            "priority"
        );
        assert_eq!(set_field(&mut ticket, "stage_id", "3").unwrap(), "stage_id");
        assert_eq!(set_field(&mut ticket, "tags", "a, b,,c").unwrap(), "tags");
        assert_eq!(
            set_field(&mut ticket, "hs_score", "4.5").unwrap(),
            "properties.hs_score"
        );
        assert_eq!(
            set_field(&mut ticket, "properties.region", "eu").unwrap(),
            "properties.region"
        );
        assert_eq!(ticket.priority, Priority::High as i32);
        assert_eq!(ticket.stage_id, 3);
        assert_eq!(ticket.tags, ["a", "b", "c"]);
        assert_eq!(
            ticket.properties.get("hs_score").map(String::as_str),
            Some("4.5")
        );
        assert!(set_field(&mut ticket, "stage_id", "three").is_err());
        assert!(set_field(&mut ticket, "create_time", "yesterday").is_err());
        assert!(set_field(&mut ticket, "id", "4").is_err());
    }

    #[test]
    fn assignments_split_on_the_first_equals() {
        assert_eq!(split_assignment("content=a=b").unwrap(), ("content", "a=b"));
        assert!(split_assignment("novalue").is_err());
        assert!(split_assignment("=x").is_err());
    }

    #[test]
    fn priorities() {
        assert_eq!(parse_priority("PRIORITY_URGENT").unwrap(), Priority::Urgent);
        assert_eq!(parse_priority("Low").unwrap(), Priority::Low);
        assert!(parse_priority("very").is_err());
        assert_eq!(priority_label(Priority::High as i32), "HIGH");
    }
}
