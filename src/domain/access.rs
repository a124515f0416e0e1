//! What a customer may see and change, after OneDesk's customer portals: which tickets (the portal's
//! visibility rules and allowed types), which fields of them (visible properties), which fields it may edit.
//! Staff (admins, agents, services) see everything; the rules here apply to customers only.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Error, Result,
    card::{CardTemplate, TicketPath},
    commands::NewTicket,
    comment::Visibility,
    event::{EventDetail, EventKind, Notify, SideEffects, TicketEvent},
    field::{CustomerAccess, TicketField},
    follower::{FollowerKind, parse_id},
    property::PropertyDefinition,
    search::{RawFilter, filter_field},
    ticket::{REFERENCE_MAX_CHARS, Ticket, TicketChanges, TicketDraft},
};

/// Longest portal name.
pub const PORTAL_NAME_MAX_CHARS: usize = 200;
/// Most entries in one of a portal's lists.
pub const PORTAL_LIST_MAX: usize = 1_000;

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
        for (index, name) in self.visible_properties.iter().enumerate() {
            let at = || format!("visible_properties[{index}]");
            match portal_field(name) {
                TicketField::Property(name) => match definitions.get(&name) {
                    None => {
                        return Err(Error::invalid(
                            at(),
                            format!("{name:?} is neither a ticket field nor a custom property"),
                        ));
                    }
                    Some(definition) if !definition.customer_visible => {
                        return Err(Error::invalid(
                            at(),
                            format!("property {name:?} is not customer_visible"),
                        ));
                    }
                    Some(_) => {}
                },
                field => {
                    if field.rules().customers == CustomerAccess::Never {
                        return Err(Error::invalid(
                            at(),
                            format!("{field} is never shown to customers"),
                        ));
                    }
                }
            }
        }
        for (index, name) in self.editable_properties.iter().enumerate() {
            let at = || format!("editable_properties[{index}]");
            let field = portal_field(name);
            let customers = field.rules().customers;
            if customers == (CustomerAccess::Always { editable: true }) {
                continue;
            }
            if !self.visible_properties.contains(name) {
                return Err(Error::invalid(
                    at(),
                    format!("{name:?} must also be in visible_properties"),
                ));
            }
            let TicketField::Property(name) = field else {
                if customers == (CustomerAccess::Portal { editable: true }) {
                    continue;
                }
                return Err(Error::invalid(
                    at(),
                    format!(
                        "{name:?} is never customer-editable; editable ticket fields are {}",
                        TicketField::names_where(|field| field.rules().customers
                            == CustomerAccess::Portal { editable: true })
                    ),
                ));
            };
            match definitions.get(&name) {
                Some(definition) if definition.agent_only => {
                    return Err(Error::invalid(
                        at(),
                        format!("property {name:?} is agent_only"),
                    ));
                }
                Some(definition) if !definition.customer_editable => {
                    return Err(Error::invalid(
                        at(),
                        format!("property {name:?} is not customer_editable"),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(Error::invalid(
                        at(),
                        format!("{name:?} is not an editable ticket field"),
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

    /// The whole rule in memory, given who follows the ticket and its project: the same answer the store's
    /// SQL form of this scope gives (a property test over generated data holds the two together).
    pub fn shows(&self, ticket: &Ticket, follows: &Follows) -> bool {
        if self.shows_by_fields(ticket) {
            return true;
        }
        let followed = self.rules.followed && follows.ticket_followers.contains(&self.customer_id);
        let project_followed = self.rules.followed_projects
            && !ticket.project_id.is_empty()
            && follows
                .project_followers
                .iter()
                .any(|(kind, follower)| match kind {
                    FollowerKind::User => *follower == self.customer_id,
                    FollowerKind::Organization => !self.org.is_empty() && *follower == self.org,
                });
        self.type_allowed(&ticket.ticket_type) && (followed || project_followed)
    }

    /// Whether some ticket could be visible only through a follower rule.
    pub fn needs_followers(&self) -> bool {
        self.rules.followed || self.rules.followed_projects
    }

    /// Whether the portal allows tickets of this type.
    pub fn type_allowed(&self, ticket_type: &str) -> bool {
        self.ticket_types.is_empty() || self.ticket_types.iter().any(|t| t == ticket_type)
    }

    /// What can be said of a streamed item about a ticket from its snapshot (what the ticket was when the
    /// change committed), before asking the database about followers.
    pub fn judge_snapshot(&self, snapshot: Option<&Ticket>) -> Judgement {
        let Some(ticket) = snapshot else {
            return Judgement::AskDatabase;
        };
        if self.shows_by_fields(ticket) {
            Judgement::Shown
        } else if !self.type_allowed(&ticket.ticket_type) || !self.needs_followers() {
            Judgement::Hidden
        } else {
            Judgement::AskDatabase
        }
    }
}

/// Who follows one ticket and its project: what the follower rules read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Follows<'a> {
    /// Ids following the ticket.
    pub ticket_followers: &'a [String],
    /// Followers of the ticket's project.
    pub project_followers: &'a [(FollowerKind, String)],
}

/// A stream item's visibility as far as its snapshot tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Shown,
    Hidden,
    /// Only a follower rule could show it: the database knows.
    AskDatabase,
}

/// How a portal's list entry names a field: a core field by its name, anything else a custom property by its
/// bare name (portals list `region`, not `properties.region`).
fn portal_field(name: &str) -> TicketField {
    TicketField::parse(name)
        .filter(|field| field.property_name().is_none())
        .unwrap_or_else(|| TicketField::Property(name.to_owned()))
}

/// A customer's whole view: which tickets, which of their fields, what it may change. Fails closed: a field
/// is shown or editable only when its rule row and the portal both say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerView {
    pub scope: TicketScope,
    pub portal: Portal,
    /// Fields the portal shows besides those every customer sees: listed, and (custom properties) still
    /// `customer_visible`.
    visible: BTreeSet<TicketField>,
    /// Fields the portal lets customers change besides subject and content: listed, visible, and (custom
    /// properties) `customer_editable` and not `agent_only` — checked again here because a definition may
    /// have changed since the portal was saved.
    editable: BTreeSet<TicketField>,
}

impl CustomerView {
    /// The view of `customer_id` (of organization `org`) through `portal`, given today's definitions.
    pub fn new(
        customer_id: &str,
        org: &str,
        portal: Portal,
        definitions: &BTreeMap<String, PropertyDefinition>,
    ) -> Self {
        let definition =
            |field: &TicketField| field.property_name().map(|name| definitions.get(name));
        let visible: BTreeSet<TicketField> = portal
            .visible_properties
            .iter()
            .map(|name| portal_field(name))
            .filter(|field| match definition(field) {
                Some(found) => found.is_some_and(|definition| definition.customer_visible),
                None => matches!(field.rules().customers, CustomerAccess::Portal { .. }),
            })
            .collect();
        let editable = portal
            .editable_properties
            .iter()
            .map(|name| portal_field(name))
            .filter(|field| visible.contains(field))
            .filter(|field| match definition(field) {
                Some(found) => found.is_some_and(|definition| {
                    definition.customer_editable && !definition.agent_only
                }),
                None => field.rules().customers == (CustomerAccess::Portal { editable: true }),
            })
            .collect();
        Self {
            scope: TicketScope {
                customer_id: customer_id.to_owned(),
                org: org.to_owned(),
                rules: portal.rules,
                ticket_types: portal.ticket_types.clone(),
            },
            portal,
            visible,
            editable,
        }
    }

    /// Whether a field's value reaches this customer.
    pub fn sees(&self, field: &TicketField) -> bool {
        match field.rules().customers {
            CustomerAccess::Always { .. } => true,
            CustomerAccess::Portal { .. } => self.visible.contains(field),
            CustomerAccess::Never => false,
        }
    }

    /// Whether this customer may change a field.
    pub fn may_edit(&self, field: &TicketField) -> bool {
        match field.rules().customers {
            CustomerAccess::Always { editable } => editable,
            CustomerAccess::Portal { editable } => editable && self.editable.contains(field),
            CustomerAccess::Never => false,
        }
    }

    /// Refuses a filter (named `at` in the request) on a field the customer does not see: filtering on it
    /// would reveal hidden values one query at a time.
    pub fn check_filter(&self, at: impl Into<String>, field: &TicketField) -> Result<()> {
        if self.sees(field) {
            return Ok(());
        }
        let shown = match field.property_name() {
            Some(name) => name.to_owned(),
            None => field.to_string(),
        };
        Err(Error::denied(
            at,
            format!("{shown:?} is not visible through this portal"),
        ))
    }

    /// Refuses a search whose filters address a field the customer does not see. Errors name
    /// `filter_groups[g].filters[f].property`.
    pub fn check_search(&self, groups: &[Vec<RawFilter>]) -> Result<()> {
        for (group_index, group) in groups.iter().enumerate() {
            for (filter_index, filter) in group.iter().enumerate() {
                self.check_filter(
                    format!("filter_groups[{group_index}].filters[{filter_index}].property"),
                    &filter_field(&filter.property),
                )?;
            }
        }
        Ok(())
    }

    /// The ticket as this customer may see it: every field it does not see goes out as its zero value. The
    /// ticket is taken apart whole, so a field added to [`Ticket`] does not compile until it is decided here.
    pub fn redact(&self, ticket: Ticket) -> Ticket {
        let Ticket {
            id,
            subject,
            content,
            pipeline_id,
            stage_id,
            priority,
            requester_id,
            assignee_id,
            organization_id,
            ticket_type,
            tags,
            project_id,
            external_id,
            mut properties,
            create_time,
            update_time,
            close_time,
            archive_time,
            version,
        } = ticket;
        properties.retain(|name, _| self.sees(&TicketField::Property(name.clone())));
        Ticket {
            id: self.shown(TicketField::Id, id),
            subject: self.shown(TicketField::Subject, subject),
            content: self.shown(TicketField::Content, content),
            pipeline_id: self.shown(TicketField::PipelineId, pipeline_id),
            stage_id: self.shown(TicketField::StageId, stage_id),
            priority: self.shown(TicketField::Priority, priority),
            requester_id: self.shown(TicketField::RequesterId, requester_id),
            assignee_id: self.shown(TicketField::AssigneeId, assignee_id),
            organization_id: self.shown(TicketField::OrganizationId, organization_id),
            ticket_type: self.shown(TicketField::TicketType, ticket_type),
            tags: self.shown(TicketField::Tags, tags),
            project_id: self.shown(TicketField::ProjectId, project_id),
            external_id: self.shown(TicketField::ExternalId, external_id),
            properties,
            create_time: self.shown(TicketField::CreateTime, create_time),
            update_time: self.shown(TicketField::UpdateTime, update_time),
            close_time: self.shown(TicketField::CloseTime, close_time),
            archive_time: self.shown(TicketField::ArchiveTime, archive_time),
            version: self.shown(TicketField::Etag, version),
        }
    }

    fn shown<T: Default>(&self, field: TicketField, value: T) -> T {
        if self.sees(&field) {
            value
        } else {
            T::default()
        }
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
        event.changes.retain(|change| self.sees(&change.field));
        if had_changes
            && event.changes.is_empty()
            && matches!(event.kind, EventKind::Updated | EventKind::StageChanged)
        {
            return None;
        }
        event.ticket = event.ticket.map(|ticket| self.redact(ticket));
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
        for field in draft.fields_set() {
            match field {
                // Filled in above.
                TicketField::RequesterId | TicketField::OrganizationId => {}
                // A new ticket's type is chosen among the portal's types, checked below even when empty.
                TicketField::TicketType => {}
                field if !self.may_edit(&field) => return Err(not_editable(&field)),
                _ => {}
            }
        }
        self.check_ticket_type(&draft.ticket_type)
    }

    /// Checks that every change of an update is one this customer may make.
    pub fn check_changes(&self, changes: &TicketChanges) -> Result<()> {
        if let Some(field) = changes
            .fields()
            .into_iter()
            .find(|field| !self.may_edit(field))
        {
            return Err(not_editable(&field));
        }
        if let Some(ticket_type) = &changes.ticket_type {
            self.check_ticket_type(ticket_type)?;
        }
        Ok(())
    }

    /// The first ticket path a card template shows — through its bindings or inside its view — that this
    /// customer does not see, if any: a card showing it would leak a hidden value.
    pub fn hidden_card_field(&self, template: &CardTemplate) -> Result<Option<TicketPath>> {
        Ok(template
            .ticket_paths()?
            .into_iter()
            .find(|path| !self.sees(&path.field())))
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

fn not_editable(field: &TicketField) -> Error {
    match field {
        TicketField::Properties => Error::denied(
            "properties",
            "customers change properties one at a time (properties.<name>)",
        ),
        field => Error::denied(
            field.to_string(),
            format!("{field} is not editable through this portal"),
        ),
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
    pub fn redact(&self, ticket: Ticket) -> Ticket {
        match self {
            Self::Staff => ticket,
            Self::Customer(view) => view.redact(ticket),
        }
    }

    /// Customers write PUBLIC comments only: internal notes are the desk's.
    pub fn check_comment(&self, visibility: Visibility) -> Result<()> {
        if self.customer().is_none() || visibility == Visibility::Public {
            return Ok(());
        }
        Err(Error::denied(
            "visibility",
            "customers may add PUBLIC comments only",
        ))
    }

    /// Customers may ask that everyone be notified, but not that a write go unannounced or bypass the
    /// desk's automations: those are for the desk's own bulk and corrective work.
    pub fn check_side_effects(&self, asked: SideEffects) -> Result<()> {
        if self.customer().is_none() {
            return Ok(());
        }
        if asked.notify == Notify::None {
            return Err(Error::denied(
                "side_effects.notify",
                "customers may not ask for NOTIFY_NONE",
            ));
        }
        if asked.skip_automations {
            return Err(Error::denied(
                "side_effects.skip_automations",
                "customers may not skip automations",
            ));
        }
        Ok(())
    }

    /// Customers log time only where their portal allows it.
    pub fn check_time_logging(&self) -> Result<()> {
        match self.customer() {
            Some(view) if !view.portal.time_logging => Err(Error::denied(
                "ticket_id",
                format!("portal {} does not let customers log time", view.portal.id),
            )),
            _ => Ok(()),
        }
    }

    /// A card group holds cards of many tickets: a customer watches the cards it may see one by one.
    pub fn check_card_group_watch(&self) -> Result<()> {
        match self.customer() {
            Some(_) => Err(Error::denied(
                "group_id",
                "customers watch one card by card_id",
            )),
            None => Ok(()),
        }
    }

    /// An event as this viewer may receive it (see [`CustomerView::redact_event`]); staff receive it whole.
    pub fn redact_event(&self, event: TicketEvent) -> Option<TicketEvent> {
        match self {
            Self::Staff => Some(event),
            Self::Customer(view) => view.redact_event(event),
        }
    }

    /// Refuses a filter on a field this viewer does not see (see [`CustomerView::check_filter`]).
    pub fn check_filter(&self, at: impl Into<String>, field: &TicketField) -> Result<()> {
        match self.customer() {
            Some(view) => view.check_filter(at, field),
            None => Ok(()),
        }
    }

    /// Refuses a search filtering on a field this viewer does not see (see [`CustomerView::check_search`]).
    pub fn check_search(&self, groups: &[Vec<RawFilter>]) -> Result<()> {
        match self.customer() {
            Some(view) => view.check_search(groups),
            None => Ok(()),
        }
    }

    /// Applies a customer's rules to a new ticket: it requests it for itself and its organization, sets only
    /// editable fields, and links nothing (associations are the desk's records). Errors name `ticket.<field>`.
    pub fn prepare_new_ticket(&self, new: &mut NewTicket) -> Result<()> {
        let Some(view) = self.customer() else {
            return Ok(());
        };
        if !new.associations.is_empty() {
            return Err(Error::denied(
                "associations",
                "customers cannot link tickets to other objects",
            ));
        }
        view.prepare_draft(&mut new.draft)
            .map_err(|error| error.within("ticket"))
    }

    /// Checks an update's changes against the customer's portal; errors name `ticket.<field>`.
    pub fn check_update(&self, changes: &TicketChanges) -> Result<()> {
        match self.customer() {
            None => Ok(()),
            Some(view) => view
                .check_changes(changes)
                .map_err(|error| error.within("ticket")),
        }
    }

    /// A customer reads its own portal (to know what it may edit); any other id is NOT_FOUND to it.
    pub fn check_portal_read(&self, portal_id: i64) -> Result<()> {
        match self.customer() {
            Some(view) if view.portal.id != portal_id => {
                Err(Error::not_found(Portal::RESOURCE, portal_id))
            }
            _ => Ok(()),
        }
    }

    /// Whom a follow request (naming `requested`, empty for the caller) is about: the caller by default; only
    /// staff may name someone else.
    pub fn follower_id(&self, caller_id: &str, requested: &str) -> Result<String> {
        if requested.is_empty() || requested == caller_id {
            return Ok(caller_id.to_owned());
        }
        if self.customer().is_some() {
            return Err(Error::denied(
                "follower_id",
                "customers may follow or unfollow only for themselves",
            ));
        }
        parse_id("follower_id", requested)
    }

    /// Whose entries a listing about people shows (followers, time entries): a customer sees only its own —
    /// followers may belong to other organizations, and the desk's timesheets are internal. `None`: everyone's.
    pub fn own_entries_only<'a>(&self, caller_id: &'a str) -> Option<&'a str> {
        self.customer().map(|_| caller_id)
    }
}

/// Whose time entries a caller may delete: admins anyone's (`None`), everybody else only their own.
pub fn time_entry_deleter(caller_id: &str, admin: bool) -> Option<&str> {
    (!admin).then_some(caller_id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{
        comment::Visibility,
        property::{PropertyDefinition, PropertyType},
        ticket::Priority,
    };

    fn definition(
        name: &str,
        visible: bool,
        editable: bool,
        agent_only: bool,
    ) -> PropertyDefinition {
        let time = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        PropertyDefinition {
            name: name.to_owned(),
            label: name.to_owned(),
            description: String::new(),
            group_name: String::new(),
            property_type: PropertyType::String,
            options: Vec::new(),
            required: false,
            default_value: None,
            agent_only,
            customer_visible: visible,
            customer_editable: editable,
            version: 1,
            create_time: time,
            update_time: time,
            archive_time: None,
        }
    }

    fn definitions() -> BTreeMap<String, PropertyDefinition> {
        [
            definition("region", true, true, false),
            definition("shown_only", true, false, false),
            definition("internal_score", false, false, true),
        ]
        .into_iter()
        .map(|definition| (definition.name.clone(), definition))
        .collect()
    }

    fn portal(visible: &[&str], editable: &[&str]) -> Portal {
        let time = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        Portal {
            id: 7,
            name: "Help".into(),
            rules: VisibilityRules {
                requested: true,
                followed: true,
                organization: true,
                followed_projects: true,
            },
            ticket_types: Vec::new(),
            visible_properties: visible.iter().map(|name| (*name).to_owned()).collect(),
            editable_properties: editable.iter().map(|name| (*name).to_owned()).collect(),
            time_logging: false,
            version: 1,
            create_time: time,
            update_time: time,
        }
    }

    fn view(visible: &[&str], editable: &[&str]) -> CustomerView {
        CustomerView::new("alice", "org-a", portal(visible, editable), &definitions())
    }

    /// A ticket with every field set to something other than its zero value.
    fn full_ticket() -> Ticket {
        let time = Utc.with_ymd_and_hms(2026, 11, 2, 3, 4, 5).unwrap();
        Ticket {
            id: 42,
            subject: "Printer on fire".into(),
            content: "Smoke".into(),
            pipeline_id: 3,
            stage_id: 9,
            priority: Some(Priority::Urgent),
            requester_id: "alice".into(),
            assignee_id: "agent-1".into(),
            organization_id: "org-a".into(),
            ticket_type: "incident".into(),
            tags: vec!["vip".into()],
            project_id: "proj-1".into(),
            external_id: "zendesk-4711".into(),
            properties: [
                ("region".to_owned(), "EMEA".to_owned()),
                ("shown_only".to_owned(), "x".to_owned()),
                ("internal_score".to_owned(), "99".to_owned()),
                ("undefined".to_owned(), "y".to_owned()),
            ]
            .into(),
            create_time: time,
            update_time: time,
            close_time: Some(time),
            archive_time: Some(time),
            version: 5,
        }
    }

    /// Every field at its zero value: what a hidden field goes out as.
    fn blank_ticket() -> Ticket {
        Ticket {
            id: 0,
            subject: String::new(),
            content: String::new(),
            pipeline_id: 0,
            stage_id: 0,
            priority: None,
            requester_id: String::new(),
            assignee_id: String::new(),
            organization_id: String::new(),
            ticket_type: String::new(),
            tags: Vec::new(),
            project_id: String::new(),
            external_id: String::new(),
            properties: BTreeMap::new(),
            create_time: Default::default(),
            update_time: Default::default(),
            close_time: None,
            archive_time: None,
            version: 0,
        }
    }

    fn every_field(ticket: &Ticket) -> Vec<TicketField> {
        TicketField::core()
            .chain(ticket.properties.keys().cloned().map(TicketField::Property))
            .collect()
    }

    #[test]
    fn a_field_no_portal_lists_never_reaches_a_customer() {
        let ticket = full_ticket();
        let blank = CustomerView::new("alice", "org-a", portal(&[], &[]), &BTreeMap::new());
        let redacted = blank.redact(ticket.clone());
        for field in every_field(&ticket) {
            let always = matches!(field.rules().customers, CustomerAccess::Always { .. });
            let shown = field.text(&redacted, |t| t.to_rfc3339());
            if always {
                assert_eq!(shown, field.text(&ticket, |t| t.to_rfc3339()), "{field}");
            } else {
                assert!(!blank.sees(&field), "{field} is seen without being listed");
                let unset = field.text(&blank_ticket(), |t| t.to_rfc3339());
                assert_eq!(
                    shown, unset,
                    "{field} reached a customer whose portal lists nothing"
                );
            }
        }
    }

    #[test]
    fn listed_fields_are_shown_and_every_other_is_hidden() {
        let ticket = full_ticket();
        let view = view(&["priority", "region", "internal_score", "shown_only"], &[]);
        let redacted = view.redact(ticket.clone());
        assert_eq!(redacted.priority, Some(Priority::Urgent));
        assert_eq!(redacted.assignee_id, "");
        assert_eq!(redacted.tags, Vec::<String>::new());
        assert_eq!(redacted.pipeline_id, 0);
        // internal_score is listed but not customer_visible; undefined has no definition at all.
        assert_eq!(
            redacted.properties.keys().collect::<Vec<_>>(),
            ["region", "shown_only"]
        );
        assert_eq!(redacted.subject, ticket.subject);
        assert_eq!(redacted.etag(), ticket.etag());
    }

    #[test]
    fn a_portal_may_show_the_external_id_but_never_let_customers_change_it() {
        let settings = |visible: &[&str], editable: &[&str]| PortalSettings {
            name: "Help".into(),
            rules: VisibilityRules::default(),
            ticket_types: Vec::new(),
            visible_properties: visible.iter().map(|name| (*name).to_owned()).collect(),
            editable_properties: editable.iter().map(|name| (*name).to_owned()).collect(),
            time_logging: false,
        };
        assert!(
            settings(&["external_id"], &[])
                .check(&definitions())
                .is_ok()
        );
        match settings(&["external_id"], &["external_id"]).check(&definitions()) {
            Err(Error::InvalidArgument { field, .. }) => {
                assert_eq!(field, "editable_properties[0]")
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
        let shown = view(&["external_id"], &[]);
        assert_eq!(shown.redact(full_ticket()).external_id, "zendesk-4711");
        assert!(!shown.may_edit(&TicketField::ExternalId));
        assert_eq!(view(&[], &[]).redact(full_ticket()).external_id, "");
    }

    #[test]
    fn history_changes_of_hidden_fields_are_dropped_and_updates_touching_only_them_vanish() {
        let view = view(&["priority"], &[]);
        let change = |field: TicketField| crate::domain::event::FieldChange {
            field,
            old_value: "a".into(),
            new_value: "b".into(),
        };
        let event = |changes| TicketEvent {
            event_id: 1,
            ticket_id: 42,
            kind: EventKind::Updated,
            changes,
            actor_id: "agent-1".into(),
            create_time: Utc::now(),
            detail: None,
            ticket: Some(full_ticket()),
            side_effects: SideEffects::default().settle(false),
            cause_event_id: None,
        };
        let only_hidden = event(vec![
            change(TicketField::AssigneeId),
            change(TicketField::Property("internal_score".into())),
        ]);
        assert_eq!(view.redact_event(only_hidden), None);
        let mixed = view
            .redact_event(event(vec![
                change(TicketField::AssigneeId),
                change(TicketField::Priority),
            ]))
            .unwrap();
        assert_eq!(
            mixed.changes.iter().map(|c| &c.field).collect::<Vec<_>>(),
            [&TicketField::Priority]
        );
        assert_eq!(mixed.ticket.unwrap().assignee_id, "");
    }

    #[test]
    fn customers_change_only_what_the_portal_lets_them() {
        let view = view(
            &[
                "priority",
                "stage_id",
                "region",
                "shown_only",
                "assignee_id",
            ],
            &["priority", "region", "shown_only", "assignee_id"],
        );
        let refused = |changes: TicketChanges| match view.check_changes(&changes) {
            Err(Error::PermissionDenied { field, .. }) => field,
            other => panic!("expected PERMISSION_DENIED, got {other:?}"),
        };
        assert!(
            view.check_changes(&TicketChanges {
                subject: Some("s".into()),
                priority: Some(None),
                property_updates: [("region".to_owned(), Some("EU".to_owned()))].into(),
                ..Default::default()
            })
            .is_ok()
        );
        // Shown but not listed as editable; listed but never customer-editable; not customer_editable.
        let stage = TicketChanges {
            stage_id: Some(1),
            ..Default::default()
        };
        assert_eq!(refused(stage), "stage_id");
        let assignee = TicketChanges {
            assignee_id: Some("me".into()),
            ..Default::default()
        };
        assert_eq!(refused(assignee), "assignee_id");
        let shown_only = TicketChanges {
            property_updates: [("shown_only".to_owned(), None)].into(),
            ..Default::default()
        };
        assert_eq!(refused(shown_only), "properties.shown_only");
        let whole_map = TicketChanges {
            properties: Some(BTreeMap::new()),
            ..Default::default()
        };
        assert_eq!(refused(whole_map), "properties");
        for field in TicketField::core() {
            if !field.rules().writable {
                assert!(!view.may_edit(&field), "{field} is output only");
            }
        }
    }

    #[test]
    fn a_customers_draft_is_its_own_and_sets_only_editable_fields() {
        let view = view(&["priority"], &["priority"]);
        let draft = || TicketDraft {
            subject: "s".into(),
            content: String::new(),
            pipeline_id: None,
            stage_id: None,
            priority: Some(Priority::High),
            requester_id: String::new(),
            assignee_id: String::new(),
            organization_id: String::new(),
            ticket_type: String::new(),
            tags: Vec::new(),
            project_id: String::new(),
            external_id: String::new(),
            properties: BTreeMap::new(),
        };
        let mut mine = draft();
        view.prepare_draft(&mut mine).unwrap();
        assert_eq!(
            (mine.requester_id.as_str(), mine.organization_id.as_str()),
            ("alice", "org-a")
        );
        for (name, change) in [
            (
                "requester_id",
                (|d: &mut TicketDraft| d.requester_id = "bob".into()) as fn(&mut TicketDraft),
            ),
            ("organization_id", |d| d.organization_id = "org-b".into()),
            ("assignee_id", |d| d.assignee_id = "agent".into()),
            ("pipeline_id", |d| d.pipeline_id = Some(2)),
            ("tags", |d| d.tags = vec!["x".into()]),
            ("external_id", |d| d.external_id = "zendesk-1".into()),
            ("properties.region", |d| {
                d.properties.insert("region".into(), "EU".into());
            }),
        ] {
            let mut theirs = draft();
            change(&mut theirs);
            match view.prepare_draft(&mut theirs) {
                Err(Error::PermissionDenied { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: expected PERMISSION_DENIED, got {other:?}"),
            }
        }
    }

    #[test]
    fn portal_decisions_for_comments_time_cards_follows_and_entries() {
        let customer = Viewer::Customer(Box::new(view(&[], &[])));
        let staff = Viewer::Staff;
        assert!(customer.check_comment(Visibility::Public).is_ok());
        assert!(customer.check_comment(Visibility::Internal).is_err());
        assert!(staff.check_comment(Visibility::Internal).is_ok());
        assert!(customer.check_time_logging().is_err());
        assert!(staff.check_time_logging().is_ok());
        let mut logging = view(&[], &[]);
        logging.portal.time_logging = true;
        assert!(
            Viewer::Customer(Box::new(logging))
                .check_time_logging()
                .is_ok()
        );
        assert!(customer.check_card_group_watch().is_err());
        assert!(staff.check_card_group_watch().is_ok());
        assert_eq!(customer.follower_id("alice", "").unwrap(), "alice");
        assert_eq!(customer.follower_id("alice", "alice").unwrap(), "alice");
        assert!(customer.follower_id("alice", "bob").is_err());
        assert_eq!(staff.follower_id("agent", "bob").unwrap(), "bob");
        assert_eq!(customer.own_entries_only("alice"), Some("alice"));
        assert_eq!(staff.own_entries_only("agent"), None);
        assert_eq!(time_entry_deleter("agent", false), Some("agent"));
        assert_eq!(time_entry_deleter("admin", true), None);
        assert!(customer.check_portal_read(7).is_ok());
        assert!(matches!(
            customer.check_portal_read(8),
            Err(Error::NotFound { .. })
        ));
        assert!(staff.check_portal_read(8).is_ok());
    }

    #[test]
    fn filters_on_hidden_fields_are_refused_naming_the_filter() {
        let view = view(&["priority", "region"], &[]);
        let filter = |property: &str| RawFilter {
            property: property.to_owned(),
            operator: None,
            value: String::new(),
            values: Vec::new(),
            high_value: String::new(),
        };
        assert!(
            view.check_search(&[vec![filter("priority"), filter("region"), filter("id")]])
                .is_ok()
        );
        match view.check_search(&[
            vec![filter("priority")],
            vec![filter("region"), filter("assignee_id")],
        ]) {
            Err(Error::PermissionDenied { field, .. }) => {
                assert_eq!(field, "filter_groups[1].filters[1].property")
            }
            other => panic!("expected PERMISSION_DENIED, got {other:?}"),
        }
        assert!(
            view.check_search(&[vec![filter("internal_score")]])
                .is_err()
        );
        assert!(
            view.check_filter("stage_ids", &TicketField::StageId)
                .is_err()
        );
    }

    #[test]
    fn the_in_memory_scope_follows_every_rule() {
        let scope = view(&[], &[]).scope;
        let mut ticket = full_ticket();
        let nobody = Follows::default();
        assert!(scope.shows(&ticket, &nobody), "requested by alice");
        ticket.requester_id = "bob".into();
        assert!(scope.shows(&ticket, &nobody), "organization org-a");
        ticket.organization_id = "org-b".into();
        assert!(!scope.shows(&ticket, &nobody));
        let followers = ["alice".to_owned()];
        assert!(scope.shows(
            &ticket,
            &Follows {
                ticket_followers: &followers,
                ..nobody
            }
        ));
        let org_follows = [(FollowerKind::Organization, "org-a".to_owned())];
        assert!(scope.shows(
            &ticket,
            &Follows {
                project_followers: &org_follows,
                ..nobody
            }
        ));
        ticket.project_id.clear();
        assert!(!scope.shows(
            &ticket,
            &Follows {
                project_followers: &org_follows,
                ..nobody
            }
        ));
        assert_eq!(scope.judge_snapshot(None), Judgement::AskDatabase);
        assert_eq!(scope.judge_snapshot(Some(&full_ticket())), Judgement::Shown);
        assert_eq!(scope.judge_snapshot(Some(&ticket)), Judgement::AskDatabase);
        let narrow = TicketScope {
            rules: VisibilityRules {
                requested: true,
                ..VisibilityRules::default()
            },
            ..scope
        };
        assert_eq!(narrow.judge_snapshot(Some(&ticket)), Judgement::Hidden);
    }
}
