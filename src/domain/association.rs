//! Associations: typed, labelled links from a ticket to objects of other services and to other tickets.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// The object type of tickets themselves.
pub const TICKET_OBJECT_TYPE: &str = "ticket";
/// Longest object type or object id.
pub const OBJECT_REF_MAX_CHARS: usize = 100;
/// Longest association label.
pub const LABEL_MAX_CHARS: usize = 255;

/// Who made an association type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Category {
    /// Seeded by migrations, HubSpot's ids.
    System,
    /// Made by an administrator.
    User,
}

impl Category {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "SYSTEM",
            Self::User => "USER",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        match value {
            "SYSTEM" => Some(Self::System),
            "USER" => Some(Self::User),
            _ => None,
        }
    }
}

/// A kind of link between two object types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationType {
    pub id: i64,
    pub category: Category,
    pub from_object_type: String,
    pub to_object_type: String,
    pub label: String,
    pub inverse_label: String,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub object_type: String,
    pub object_id: String,
}

/// A link as seen from `ticket_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub ticket_id: i64,
    pub to: ObjectRef,
    pub association_type_id: i64,
    pub label: String,
    pub create_time: DateTime<Utc>,
}

/// A link to make or remove; a type id of `None` means the unlabelled system type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationSpec {
    pub to: ObjectRef,
    pub association_type_id: Option<i64>,
}

/// Object types are lower_snake_case names, like property names.
pub fn check_object_type(field: &str, object_type: &str) -> Result<()> {
    if super::text::is_lower_snake_case(object_type, OBJECT_REF_MAX_CHARS) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{object_type:?} is not a lower_snake_case object type"),
        ))
    }
}

impl ObjectRef {
    /// Checks both parts; a ticket reference must be a ticket id. Errors name `object_type`/`object_id`.
    pub fn parse(object_type: String, object_id: String) -> Result<Self> {
        check_object_type("object_type", &object_type)?;
        let object_id = object_id.trim().to_owned();
        if object_id.is_empty() || object_id.chars().count() > OBJECT_REF_MAX_CHARS {
            return Err(Error::invalid(
                "object_id",
                format!("is required and at most {OBJECT_REF_MAX_CHARS} characters"),
            ));
        }
        if object_type == TICKET_OBJECT_TYPE && object_id.parse::<i64>().is_err() {
            return Err(Error::invalid(
                "object_id",
                format!("{object_id:?} is not a ticket id"),
            ));
        }
        Ok(Self {
            object_type,
            object_id,
        })
    }

    /// The linked ticket's id, when this points at a ticket.
    pub fn ticket_id(&self) -> Option<i64> {
        (self.object_type == TICKET_OBJECT_TYPE)
            .then(|| self.object_id.parse().ok())
            .flatten()
    }
}

/// Parses an association label: trimmed, at most [`LABEL_MAX_CHARS`].
pub fn parse_label(field: &str, raw: &str, required: bool) -> Result<String> {
    let trimmed = raw.trim();
    if required && trimmed.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if trimmed.chars().count() > LABEL_MAX_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be at most {LABEL_MAX_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}
