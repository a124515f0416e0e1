//! Chat cards as stored: templates, the cards sent from them, and the renders pushed to watchers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Binding, TicketPath, parse_stored_view, parse_ticket_path};
use crate::domain::{Error, Result};

/// `UpdateCardProperties.version` meaning "last write wins" (Kaizala's convention).
pub const ANY_VERSION: i64 = -1;
/// Longest template name, group id or subscriber id.
pub const NAME_MAX_CHARS: usize = 255;
/// Most subscribers one card may name.
pub const MAX_SUBSCRIBERS: usize = 1_000;
/// Most properties one card may carry.
pub const MAX_CARD_PROPERTIES: usize = 100;
/// Most cards one ticket may have: every change of the ticket re-renders each of them in its transaction.
pub const MAX_CARDS_PER_TICKET: u64 = 10;

/// A card template: a Kaizala view plus bindings from card properties to ticket paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardTemplate {
    pub id: i64,
    pub name: String,
    /// The view JSON exactly as sent, so existing packages round-trip unchanged.
    pub schema: String,
    pub app_model: String,
    pub bindings: BTreeMap<String, String>,
    pub create_time: DateTime<Utc>,
}

impl CardTemplate {
    /// Every ticket path the template shows: those its properties are bound to, then those written inside its
    /// view. Both were validated when the template was created; errors name `bindings.<property>` or `schema`.
    pub fn ticket_paths(&self) -> Result<Vec<TicketPath>> {
        let mut paths = self
            .bindings
            .iter()
            .map(|(property, path)| parse_ticket_path(&format!("bindings.{property}"), path))
            .collect::<Result<Vec<_>>>()?;
        paths.extend(
            parse_stored_view(&self.schema)?
                .bindings()
                .into_iter()
                .filter_map(|binding| match binding {
                    Binding::Ticket(path) => Some(path),
                    Binding::Property(_) => None,
                }),
        );
        Ok(paths)
    }
}

/// A card sent for a ticket to a group (Kaizala's action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub id: i64,
    pub template_id: i64,
    pub ticket_id: i64,
    pub group_id: String,
    pub subscribers: Vec<String>,
    pub send_to_all_subscribers: bool,
    pub properties: BTreeMap<String, String>,
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// One version of a card, rendered: what renderers are pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRender {
    pub card_id: i64,
    pub version: i64,
    pub ticket_id: i64,
    pub group_id: String,
    /// The resolved view as JSON text.
    pub view: String,
    /// The text nodes' strings in tree order.
    pub texts: Vec<String>,
}

/// Parses a short required identifier (template name, group id), reported as `field`.
pub fn parse_name(field: &str, raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if trimmed.chars().count() > NAME_MAX_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be at most {NAME_MAX_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks the subscribers of a card: non-empty ids, at most [`MAX_SUBSCRIBERS`].
pub fn parse_subscribers(raw: Vec<String>) -> Result<Vec<String>> {
    if raw.len() > MAX_SUBSCRIBERS {
        return Err(Error::invalid(
            "subscribers",
            format!("at most {MAX_SUBSCRIBERS} subscribers, got {}", raw.len()),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(index, subscriber)| parse_name(&format!("subscribers[{index}]"), &subscriber))
        .collect()
}

/// Checks card property names and values, reported under `field`.
pub fn check_card_properties(field: &str, properties: &BTreeMap<String, String>) -> Result<()> {
    if properties.len() > MAX_CARD_PROPERTIES {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_CARD_PROPERTIES} properties"),
        ));
    }
    for (name, value) in properties {
        parse_name(field, name)?;
        if value.chars().count() > crate::domain::ticket::PROPERTY_VALUE_MAX_CHARS {
            return Err(Error::invalid(
                format!("{field}.{name}"),
                "value is too long",
            ));
        }
    }
    Ok(())
}
