//! The fields of a ticket, named once. Everything that treats fields differently — update masks, customer
//! views, history, search filters, card bindings, watch filters — matches on [`TicketField`], and what each
//! field *is* (who writes it, what customers may do with it, whether history records it) is one row of
//! [`TicketField::rules`]. A new field therefore does not compile until every one of those places has decided
//! about it; nothing is decided by a list of strings the compiler cannot check.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoEnumIterator};

use super::ticket::Ticket;

/// A field of a ticket, as clients name it in update masks, filters, bindings and history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EnumIter, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TicketField {
    Id,
    Subject,
    Content,
    PipelineId,
    StageId,
    Priority,
    RequesterId,
    AssigneeId,
    OrganizationId,
    TicketType,
    Tags,
    ProjectId,
    /// The ticket's id in the system it came from; set on create only.
    ExternalId,
    /// The whole custom-property map: an update mask path that replaces every property at once.
    Properties,
    CreateTime,
    UpdateTime,
    CloseTime,
    ArchiveTime,
    Archived,
    Etag,
    /// `properties.<name>`: one custom property.
    Property(String),
}

/// What customers may do with a field, before their portal and the property definitions have their say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAccess {
    /// Every customer who sees the ticket sees the field; `editable`: and may change it.
    Always { editable: bool },
    /// Shown only when the portal lists it in `visible_properties`; `editable`: a portal may also list it in
    /// `editable_properties`.
    Portal { editable: bool },
    /// Never shown to customers, whatever a portal says.
    Never,
}

/// The facts about one field that the rest of the service decides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRules {
    /// Clients set it (create, update masks); the others are output only, kept by the server.
    pub writable: bool,
    pub customers: CustomerAccess,
    /// A change to it is recorded in the ticket's history (and so streamed) by comparing before and after.
    pub diffed: bool,
}

impl TicketField {
    /// The rule table: one row per field.
    pub fn rules(&self) -> FieldRules {
        use CustomerAccess::{Always, Never, Portal};
        let (writable, customers, diffed) = match self {
            Self::Id => (false, Always { editable: false }, false),
            Self::Subject | Self::Content => (true, Always { editable: true }, true),
            // Changing requester, organization, assignee, pipeline or project would move a ticket into
            // someone else's view, so no portal can let customers change them.
            Self::PipelineId
            | Self::RequesterId
            | Self::AssigneeId
            | Self::OrganizationId
            | Self::ProjectId => (true, Portal { editable: false }, true),
            Self::StageId | Self::Priority | Self::TicketType | Self::Tags => {
                (true, Portal { editable: true }, true)
            }
            // Writable means settable on create: the id ties the ticket to its origin for good, so updates
            // refuse to change it (see the update mask in `api::tickets::mapping`). Customers never set it.
            Self::ExternalId => (true, Portal { editable: false }, true),
            // Replacing the whole map would also erase the properties a customer cannot see; history
            // records each property on its own.
            Self::Properties => (true, Never, false),
            Self::CreateTime | Self::UpdateTime => (false, Always { editable: false }, false),
            Self::CloseTime => (false, Always { editable: false }, true),
            // Archiving records its own change; a create or update never moves these.
            Self::ArchiveTime | Self::Archived | Self::Etag => {
                (false, Always { editable: false }, false)
            }
            // The property's definition decides further (customer_visible, customer_editable, agent_only).
            Self::Property(_) => (true, Portal { editable: true }, true),
        };
        FieldRules {
            writable,
            customers,
            diffed,
        }
    }

    /// A writable field that only a create sets: updates may not change it (an update mask naming it is
    /// refused). Such a field keeps a ticket tied to something outside that must not move.
    pub fn create_only(&self) -> bool {
        matches!(self, Self::ExternalId)
    }

    /// Reads a field's name; `properties.<name>` names one custom property (only the name's presence is
    /// checked here: `properties.` names nothing).
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(property) = name.strip_prefix("properties.") {
            return (!property.is_empty()).then(|| Self::Property(property.to_owned()));
        }
        Self::core().find(|field| field.core_name() == Some(name))
    }

    /// Every field but single custom properties, in the order history lists them.
    pub fn core() -> impl Iterator<Item = Self> {
        Self::iter().filter(|field| !matches!(field, Self::Property(_)))
    }

    /// The custom property's name, for [`TicketField::Property`].
    pub fn property_name(&self) -> Option<&str> {
        match self {
            Self::Property(name) => Some(name),
            _ => None,
        }
    }

    fn core_name(&self) -> Option<&'static str> {
        Some(match self {
            Self::Id => "id",
            Self::Subject => "subject",
            Self::Content => "content",
            Self::PipelineId => "pipeline_id",
            Self::StageId => "stage_id",
            Self::Priority => "priority",
            Self::RequesterId => "requester_id",
            Self::AssigneeId => "assignee_id",
            Self::OrganizationId => "organization_id",
            Self::TicketType => "ticket_type",
            Self::Tags => "tags",
            Self::ProjectId => "project_id",
            Self::ExternalId => "external_id",
            Self::Properties => "properties",
            Self::CreateTime => "create_time",
            Self::UpdateTime => "update_time",
            Self::CloseTime => "close_time",
            Self::ArchiveTime => "archive_time",
            Self::Archived => "archived",
            Self::Etag => "etag",
            Self::Property(_) => return None,
        })
    }

    /// The field's value as text: enums in their stored spelling, tags comma-joined, times as `time` writes
    /// them, unset values empty. The whole property map has no single text (its entries do).
    pub fn text(&self, ticket: &Ticket, time: fn(DateTime<Utc>) -> String) -> String {
        match self {
            Self::Id => ticket.id.to_string(),
            Self::Subject => ticket.subject.clone(),
            Self::Content => ticket.content.clone(),
            Self::PipelineId => ticket.pipeline_id.to_string(),
            Self::StageId => ticket.stage_id.to_string(),
            Self::Priority => ticket
                .priority
                .map(|priority| priority.as_str().to_owned())
                .unwrap_or_default(),
            Self::RequesterId => ticket.requester_id.clone(),
            Self::AssigneeId => ticket.assignee_id.clone(),
            Self::OrganizationId => ticket.organization_id.clone(),
            Self::TicketType => ticket.ticket_type.clone(),
            Self::Tags => ticket.tags.join(","),
            Self::ProjectId => ticket.project_id.clone(),
            Self::ExternalId => ticket.external_id.clone(),
            Self::Properties => String::new(),
            Self::CreateTime => time(ticket.create_time),
            Self::UpdateTime => time(ticket.update_time),
            Self::CloseTime => ticket.close_time.map(time).unwrap_or_default(),
            Self::ArchiveTime => ticket.archive_time.map(time).unwrap_or_default(),
            Self::Archived => ticket.archived().to_string(),
            Self::Etag => ticket.etag(),
            Self::Property(name) => ticket.properties.get(name).cloned().unwrap_or_default(),
        }
    }

    /// The fields a command or request sets: the core ones marked set, then one per named property.
    pub fn listed<'a>(
        core: impl IntoIterator<Item = (bool, Self)>,
        properties: impl IntoIterator<Item = &'a String>,
    ) -> Vec<Self> {
        core.into_iter()
            .filter_map(|(set, field)| set.then_some(field))
            .chain(properties.into_iter().cloned().map(Self::Property))
            .collect()
    }

    /// The names of the fields a predicate picks, comma-separated, for error messages.
    pub fn names_where(keep: impl Fn(&Self) -> bool) -> String {
        Self::core()
            .filter(|field| keep(field))
            .map(|field| field.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for TicketField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.core_name()) {
            (Self::Property(name), _) => write!(f, "properties.{name}"),
            (_, Some(name)) => f.write_str(name),
            (_, None) => Ok(()),
        }
    }
}

impl From<TicketField> for String {
    fn from(field: TicketField) -> Self {
        field.to_string()
    }
}

impl TryFrom<String> for TicketField {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(&name).ok_or_else(|| format!("unknown ticket field {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_parses_from_the_name_it_prints() {
        let mut names = std::collections::BTreeSet::new();
        for field in TicketField::core().chain([TicketField::Property("region".into())]) {
            let name = field.to_string();
            assert!(!name.is_empty(), "{field:?} has no name");
            assert!(names.insert(name.clone()), "{name} is used twice");
            assert_eq!(TicketField::parse(&name), Some(field));
        }
        assert_eq!(TicketField::parse("nope"), None);
        assert_eq!(TicketField::parse("properties."), None);
    }

    #[test]
    fn output_only_fields_are_never_customer_editable_nor_writable() {
        for field in TicketField::core() {
            let rules = field.rules();
            let customer_editable = matches!(
                rules.customers,
                CustomerAccess::Always { editable: true }
                    | CustomerAccess::Portal { editable: true }
            );
            assert!(
                rules.writable || !customer_editable,
                "{field} is output only but customer-editable"
            );
        }
    }

    #[test]
    fn fields_travel_as_their_names_in_json() {
        let json = serde_json::to_string(&TicketField::Property("region".into())).unwrap();
        assert_eq!(json, r#""properties.region""#);
        let back: TicketField = serde_json::from_str(r#""stage_id""#).unwrap();
        assert_eq!(back, TicketField::StageId);
        assert!(serde_json::from_str::<TicketField>(r#""nope""#).is_err());
    }
}
