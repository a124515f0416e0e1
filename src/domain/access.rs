//! What a customer may see and change, after OneDesk's customer portals: which tickets (the portal's
//! visibility rules and allowed types), which fields of them (visible properties), which fields it may edit.
//! Staff (admins, agents, services) see everything; the rules here apply to customers only.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Error, Result,
    comment::Visibility,
    event::{EventDetail, EventKind, TicketEvent},
    property::PropertyDefinition,
    ticket::{REFERENCE_MAX_CHARS, Ticket, TicketChanges, TicketDraft},
};

/// Longest portal name.
pub const PORTAL_NAME_MAX_CHARS: usize = 200;
/// Most entries in one of a portal's lists.
pub const PORTAL_LIST_MAX: usize = 1_000;

/// Ticket fields every customer who sees a ticket sees.
pub const ALWAYS_VISIBLE_FIELDS: &[&str] = &[
    "id",
    "subject",
    "content",
    "create_time",
    "update_time",
    "close_time",
    "archive_time",
    "archived",
    "etag",
];
/// Core fields a portal may show (`visible_properties`); hidden unless listed.
pub const SHOWABLE_CORE_FIELDS: &[&str] = &[
    "pipeline_id",
    "stage_id",
    "priority",
    "requester_id",
    "assignee_id",
    "organization_id",
    "ticket_type",
    "tags",
    "project_id",
];
/// Core fields a portal may let customers change (`editable_properties`), besides subject and content.
/// Requester, organization, assignee, pipeline and project are never customer-editable: changing them
/// would move a ticket into someone else's view.
pub const EDITABLE_CORE_FIELDS: &[&str] = &["priority", "stage_id", "ticket_type", "tags"];
/// Fields every customer who sees a ticket may change.
pub const ALWAYS_EDITABLE_FIELDS: &[&str] = &["subject", "content"];

/// An admin-defined customer portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portal {
    pub id: i64,
    pub name: String,
    pub rules: VisibilityRules,
    /// Ticket types customers see and may create; empty: every type.
    pub ticket_types: Vec<String>,
    pub visible_properties: Vec<String>,
    pub editable_properties: Vec<String>,
    pub time_logging: bool,
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Portal {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "portal";

    /// The current etag.
    pub fn etag(&self) -> String {
        super::etag::etag(Self::RESOURCE, self.id, self.version)
    }
}

/// Which tickets a portal shows: any enabled rule matching is enough.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisibilityRules {
    /// Tickets the customer requested.
    pub requested: bool,
    /// Tickets the customer follows.
    pub followed: bool,
    /// Tickets of the customer's organization.
    pub organization: bool,
    /// Tickets of projects the customer or its organization follows.
    pub followed_projects: bool,
}

/// A portal's editable settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    pub name: String,
    pub rules: VisibilityRules,
    pub ticket_types: Vec<String>,
    pub visible_properties: Vec<String>,
    pub editable_properties: Vec<String>,
    pub time_logging: bool,
}

impl PortalSettings {
    /// Checks the settings against the property definitions: every listed property exists and may be shown
    /// (or edited) by customers, and editable fields are a subset of the visible ones.
    pub fn check(&self, definitions: &BTreeMap<String, PropertyDefinition>) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        if name.chars().count() > PORTAL_NAME_MAX_CHARS {
            return Err(Error::invalid(
                "name",
                format!("must be at most {PORTAL_NAME_MAX_CHARS} characters"),
            ));
        }
        for (list, values) in [
            ("ticket_types", &self.ticket_types),
            ("visible_properties", &self.visible_properties),
            ("editable_properties", &self.editable_properties),
        ] {
            if values.len() > PORTAL_LIST_MAX {
                return Err(Error::invalid(
                    list,
                    format!("at most {PORTAL_LIST_MAX} entries"),
                ));
            }
            let mut seen = BTreeSet::new();
            for (index, value) in values.iter().enumerate() {
                if value.is_empty() || value.chars().count() > REFERENCE_MAX_CHARS {
                    return Err(Error::invalid(
                        format!("{list}[{index}]"),
                        format!("must be 1 to {REFERENCE_MAX_CHARS} characters"),
                    ));
                }
                if !seen.insert(value) {
                    return Err(Error::invalid(
                        format!("{list}[{index}]"),
                        format!("{value:?} is listed twice"),
                    ));
                }
            }
        }
        for (index, field) in self.visible_properties.iter().enumerate() {
            let at = || format!("visible_properties[{index}]");
            if ALWAYS_VISIBLE_FIELDS.contains(&field.as_str())
                || SHOWABLE_CORE_FIELDS.contains(&field.as_str())
            {
                continue;
            }
            match definitions.get(field) {
                None => {
                    return Err(Error::invalid(
                        at(),
                        format!("{field:?} is neither a ticket field nor a custom property"),
                    ));
                }
                Some(definition) if !definition.customer_visible => {
                    return Err(Error::invalid(
                        at(),
                        format!("property {field:?} is not customer_visible"),
                    ));
                }
                Some(_) => {}
            }
        }
        for (index, field) in self.editable_properties.iter().enumerate() {
            let at = || format!("editable_properties[{index}]");
            if ALWAYS_EDITABLE_FIELDS.contains(&field.as_str()) {
                continue;
            }
            if !self.visible_properties.contains(field) {
                return Err(Error::invalid(
                    at(),
                    format!("{field:?} must also be in visible_properties"),
                ));
            }
            if SHOWABLE_CORE_FIELDS.contains(&field.as_str()) {
                if !EDITABLE_CORE_FIELDS.contains(&field.as_str()) {
                    return Err(Error::invalid(
                        at(),
                        format!(
                            "{field:?} is never customer-editable; editable ticket fields are {}",
                            EDITABLE_CORE_FIELDS.join(", ")
                        ),
                    ));
                }
                continue;
            }
            match definitions.get(field) {
                Some(definition) if definition.agent_only => {
                    return Err(Error::invalid(
                        at(),
                        format!("property {field:?} is agent_only"),
                    ));
                }
                Some(definition) if !definition.customer_editable => {
                    return Err(Error::invalid(
                        at(),
                        format!("property {field:?} is not customer_editable"),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(Error::invalid(
                        at(),
                        format!("{field:?} is not an editable ticket field"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Changes to a portal; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortalChanges {
    pub name: Option<String>,
    pub requested: Option<bool>,
    pub followed: Option<bool>,
    pub organization: Option<bool>,
    pub followed_projects: Option<bool>,
    pub ticket_types: Option<Vec<String>>,
    pub visible_properties: Option<Vec<String>>,
    pub editable_properties: Option<Vec<String>>,
    pub time_logging: Option<bool>,
}

impl PortalChanges {
    /// The settings after the changes.
    pub fn apply(self, portal: &Portal) -> PortalSettings {
        let rules = portal.rules;
        PortalSettings {
            name: self.name.unwrap_or_else(|| portal.name.clone()),
            rules: VisibilityRules {
                requested: self.requested.unwrap_or(rules.requested),
                followed: self.followed.unwrap_or(rules.followed),
                organization: self.organization.unwrap_or(rules.organization),
                followed_projects: self.followed_projects.unwrap_or(rules.followed_projects),
            },
            ticket_types: self
                .ticket_types
                .unwrap_or_else(|| portal.ticket_types.clone()),
            visible_properties: self
                .visible_properties
                .unwrap_or_else(|| portal.visible_properties.clone()),
            editable_properties: self
                .editable_properties
                .unwrap_or_else(|| portal.editable_properties.clone()),
            time_logging: self.time_logging.unwrap_or(portal.time_logging),
        }
    }
}

/// The part of a customer's view the database applies when selecting tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketScope {
    pub customer_id: String,
    /// Empty when the customer belongs to no organization: the organization rules then match nothing.
    pub org: String,
    pub rules: VisibilityRules,
    /// Allowed types; empty: every type.
    pub ticket_types: Vec<String>,
}

impl TicketScope {
    /// Whether the rules that need only the ticket itself (requester, organization, type) show it. The
    /// follower rules need the database; see [`TicketScope::needs_followers`].
    pub fn shows_by_fields(&self, ticket: &Ticket) -> bool {
        self.type_allowed(&ticket.ticket_type)
            && ((self.rules.requested && ticket.requester_id == self.customer_id)
                || (self.rules.organization
                    && !self.org.is_empty()
                    && ticket.organization_id == self.org))
    }

    /// Whether some ticket could be visible only through a follower rule.
    pub fn needs_followers(&self) -> bool {
        self.rules.followed || self.rules.followed_projects
    }

    /// Whether the portal allows tickets of this type.
    pub fn type_allowed(&self, ticket_type: &str) -> bool {
        self.ticket_types.is_empty() || self.ticket_types.iter().any(|t| t == ticket_type)
    }
}

/// A customer's whole view: which tickets, which of their fields, what it may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerView {
    pub scope: TicketScope,
    pub portal: Portal,
    /// Core fields shown besides [`ALWAYS_VISIBLE_FIELDS`].
    visible_core: BTreeSet<String>,
    /// Custom properties shown: listed by the portal and still `customer_visible`.
    visible_custom: BTreeSet<String>,
    /// Core fields editable besides [`ALWAYS_EDITABLE_FIELDS`].
    editable_core: BTreeSet<String>,
    /// Custom properties editable: listed, `customer_editable` and not `agent_only` (checked again here
    /// because a definition may have changed since the portal was saved).
    editable_custom: BTreeSet<String>,
}

impl CustomerView {
    /// The view of `customer_id` (of organization `org`) through `portal`, given today's definitions.
    pub fn new(
        customer_id: &str,
        org: &str,
        portal: Portal,
        definitions: &BTreeMap<String, PropertyDefinition>,
    ) -> Self {
        let is_core = |field: &String| SHOWABLE_CORE_FIELDS.contains(&field.as_str());
        let visible_core = portal
            .visible_properties
            .iter()
            .filter(|field| is_core(field))
            .cloned()
            .collect();
        let visible_custom: BTreeSet<String> = portal
            .visible_properties
            .iter()
            .filter(|name| {
                definitions
                    .get(*name)
                    .is_some_and(|definition| definition.customer_visible)
            })
            .cloned()
            .collect();
        let editable_core = portal
            .editable_properties
            .iter()
            .filter(|field| EDITABLE_CORE_FIELDS.contains(&field.as_str()))
            .filter(|field| portal.visible_properties.contains(field))
            .cloned()
            .collect();
        let editable_custom = portal
            .editable_properties
            .iter()
            .filter(|name| visible_custom.contains(*name))
            .filter(|name| {
                definitions.get(*name).is_some_and(|definition| {
                    definition.customer_editable && !definition.agent_only
                })
            })
            .cloned()
            .collect();
        Self {
            scope: TicketScope {
                customer_id: customer_id.to_owned(),
                org: org.to_owned(),
                rules: portal.rules,
                ticket_types: portal.ticket_types.clone(),
            },
            portal,
            visible_core,
            visible_custom,
            editable_core,
            editable_custom,
        }
    }

    /// Whether a field (a `Ticket` field name or `properties.<name>`) reaches this customer.
    pub fn sees_field(&self, field: &str) -> bool {
        if ALWAYS_VISIBLE_FIELDS.contains(&field) {
            return true;
        }
        match field.strip_prefix("properties.") {
            Some(name) => self.visible_custom.contains(name),
            None => self.visible_core.contains(field),
        }
    }

    /// Whether a search may filter on `field`: only on what the customer sees, or hidden values could be
    /// probed one filter at a time.
    pub fn may_filter_on(&self, field: &str) -> bool {
        matches!(field, "id" | "create_time" | "update_time" | "close_time")
            || self.visible_core.contains(field)
            || self.visible_custom.contains(field)
    }

    /// Blanks every field the customer may not see (hidden fields go out as their zero value).
    pub fn redact(&self, ticket: &mut Ticket) {
        let shows = |field: &str| self.visible_core.contains(field);
        if !shows("pipeline_id") {
            ticket.pipeline_id = 0;
        }
        if !shows("stage_id") {
            ticket.stage_id = 0;
        }
        if !shows("priority") {
            ticket.priority = None;
        }
        if !shows("requester_id") {
            ticket.requester_id.clear();
        }
        if !shows("assignee_id") {
            ticket.assignee_id.clear();
        }
        if !shows("organization_id") {
            ticket.organization_id.clear();
        }
        if !shows("ticket_type") {
            ticket.ticket_type.clear();
        }
        if !shows("tags") {
            ticket.tags.clear();
        }
        if !shows("project_id") {
            ticket.project_id.clear();
        }
        ticket
            .properties
            .retain(|name, _| self.visible_custom.contains(name));
    }

    /// The event as this customer may receive it, or `None` when nothing of it may reach the customer:
    /// internal comments, association changes (links to contacts and companies are the desk's records), and
    /// updates that touched only hidden fields.
    pub fn redact_event(&self, mut event: TicketEvent) -> Option<TicketEvent> {
        match (&event.kind, &event.detail) {
            (EventKind::AssociationAdded | EventKind::AssociationRemoved, _) => return None,
            (_, Some(EventDetail::Association(_))) => return None,
            (_, Some(EventDetail::Comment(comment)))
                if comment.visibility != Visibility::Public =>
            {
                return None;
            }
            _ => {}
        }
        let had_changes = !event.changes.is_empty();
        event
            .changes
            .retain(|change| self.sees_field(&change.field));
        if had_changes
            && event.changes.is_empty()
            && matches!(event.kind, EventKind::Updated | EventKind::StageChanged)
        {
            return None;
        }
        if let Some(ticket) = event.ticket.as_mut() {
            self.redact(ticket);
        }
        Some(event)
    }

    /// Checks a customer's new ticket and fills in what the customer cannot choose: it is the requester,
    /// its organization owns the ticket. Anything else it may not set is PERMISSION_DENIED naming the field.
    pub fn prepare_draft(&self, draft: &mut TicketDraft) -> Result<()> {
        let me = &self.scope.customer_id;
        if !draft.requester_id.is_empty() && &draft.requester_id != me {
            return Err(Error::denied(
                "requester_id",
                "a customer can only request tickets for itself",
            ));
        }
        if !draft.organization_id.is_empty() && draft.organization_id != self.scope.org {
            return Err(Error::denied(
                "organization_id",
                "a customer can only create tickets for its own organization",
            ));
        }
        draft.requester_id = me.clone();
        draft.organization_id = self.scope.org.clone();
        let not_editable = |field: &str| {
            Error::denied(
                field,
                format!("{field} is not editable through this portal"),
            )
        };
        if !draft.assignee_id.is_empty() {
            return Err(not_editable("assignee_id"));
        }
        if !draft.project_id.is_empty() {
            return Err(not_editable("project_id"));
        }
        if draft.pipeline_id.is_some() {
            return Err(not_editable("pipeline_id"));
        }
        if draft.stage_id.is_some() && !self.editable_core.contains("stage_id") {
            return Err(not_editable("stage_id"));
        }
        if draft.priority.is_some() && !self.editable_core.contains("priority") {
            return Err(not_editable("priority"));
        }
        if !draft.tags.is_empty() && !self.editable_core.contains("tags") {
            return Err(not_editable("tags"));
        }
        self.check_ticket_type(&draft.ticket_type)?;
        for name in draft.properties.keys() {
            if !self.editable_custom.contains(name) {
                return Err(not_editable(&format!("properties.{name}")));
            }
        }
        Ok(())
    }

    /// Checks that every change of an update is one this customer may make.
    pub fn check_changes(&self, changes: &TicketChanges) -> Result<()> {
        let not_editable = |field: &str| {
            Error::denied(
                field,
                format!("{field} is not editable through this portal"),
            )
        };
        let core = |field: &str, set: bool| {
            if set && !self.editable_core.contains(field) {
                Err(not_editable(field))
            } else {
                Ok(())
            }
        };
        core("priority", changes.priority.is_some())?;
        core("stage_id", changes.stage_id.is_some())?;
        core("ticket_type", changes.ticket_type.is_some())?;
        core("tags", changes.tags.is_some())?;
        for (field, set) in [
            ("pipeline_id", changes.pipeline_id.is_some()),
            ("requester_id", changes.requester_id.is_some()),
            ("assignee_id", changes.assignee_id.is_some()),
            ("organization_id", changes.organization_id.is_some()),
            ("project_id", changes.project_id.is_some()),
        ] {
            if set {
                return Err(not_editable(field));
            }
        }
        if changes.properties.is_some() {
            // Replacing the whole map would also erase the properties the customer cannot see.
            return Err(Error::denied(
                "properties",
                "customers change properties one at a time (properties.<name>)",
            ));
        }
        for name in changes.property_updates.keys() {
            if !self.editable_custom.contains(name) {
                return Err(not_editable(&format!("properties.{name}")));
            }
        }
        if let Some(ticket_type) = &changes.ticket_type {
            self.check_ticket_type(ticket_type)?;
        }
        Ok(())
    }

    fn check_ticket_type(&self, ticket_type: &str) -> Result<()> {
        if self.scope.type_allowed(ticket_type) {
            return Ok(());
        }
        Err(Error::denied(
            "ticket_type",
            format!(
                "this portal allows ticket types {}",
                self.scope.ticket_types.join(", ")
            ),
        ))
    }
}

/// Who is reading or writing, as the store needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// Admins, agents and services: every ticket, every field.
    Staff,
    Customer(Box<CustomerView>),
}

impl Viewer {
    /// The customer's ticket scope, `None` for staff.
    pub fn scope(&self) -> Option<&TicketScope> {
        match self {
            Self::Staff => None,
            Self::Customer(view) => Some(&view.scope),
        }
    }

    /// The customer's view, `None` for staff.
    pub fn customer(&self) -> Option<&CustomerView> {
        match self {
            Self::Staff => None,
            Self::Customer(view) => Some(view),
        }
    }

    /// A ticket as this viewer may see it.
    pub fn redact(&self, mut ticket: Ticket) -> Ticket {
        if let Self::Customer(view) = self {
            view.redact(&mut ticket);
        }
        ticket
    }
}
