//! Automation rules: what sets one off, what it looks at and what it does; checked once, when saved.
//!
//! A rule is stored as the text a client sent (its [`RuleDefinition`] in JSON) and parsed again when
//! loaded, so the rule that runs is always one that passed the checks of this version.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Error, Result,
    card::{TicketContext, TicketPath, path_from_str, timestamp},
    condition::Condition,
    event::EventKind,
    field::TicketField,
    ticket::{Priority, TicketChanges, parse_reference, parse_subject, parse_tags},
};

/// Longest rule name, in characters.
pub const NAME_MAX_CHARS: usize = 200;
/// Most actions in one rule.
pub const MAX_ACTIONS: usize = 20;
/// Most firings in one write's pass over one ticket: a chain of rules setting each other off ends here.
pub const MAX_FIRINGS_PER_PASS: usize = 10;
/// Longest internal comment body, in characters.
pub const COMMENT_MAX_CHARS: usize = 65_536;

/// The writes a rule listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Trigger {
    TicketCreated,
    TicketUpdated,
    CommentAdded,
}

impl Trigger {
    /// What a history event counts as; association changes set off no rule.
    pub fn of(kind: EventKind) -> Option<Self> {
        match kind {
            EventKind::Created => Some(Self::TicketCreated),
            EventKind::Updated
            | EventKind::StageChanged
            | EventKind::Archived
            | EventKind::Restored => Some(Self::TicketUpdated),
            EventKind::CommentAdded => Some(Self::CommentAdded),
            EventKind::AssociationAdded | EventKind::AssociationRemoved => None,
        }
    }
}

/// Who an `assign` action assigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignee {
    AgentId(String),
    /// An active agent of the directory, looked up when the rule runs.
    AgentEmail(String),
}

/// One thing a rule does, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RawAction {
    SetField { path: String, value: String },
    AddTag(String),
    RemoveTag(String),
    Assign(Assignee),
    AddInternalComment { body: String },
    SendWebhook { webhook_id: i64 },
}

/// What a rule is, as the client sent it (and as stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDefinition {
    pub on: Vec<Trigger>,
    pub condition: String,
    pub changed: Vec<String>,
    pub actions: Vec<RawAction>,
}

/// A saved rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    pub position: i32,
    pub definition: RuleDefinition,
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Rule {
    pub const RESOURCE: &'static str = "rule";

    pub fn etag(&self) -> String {
        super::etag::etag(Self::RESOURCE, self.id, self.version)
    }

    /// The actor of the changes this rule makes.
    pub fn actor_id(&self) -> String {
        format!("rule:{}", self.id)
    }
}

/// A rule to create.
#[derive(Debug, Clone)]
pub struct NewRule {
    pub name: String,
    pub enabled: bool,
    /// `None`: after the last rule.
    pub position: Option<i32>,
    pub definition: RuleDefinition,
}

/// Changes to a rule; `None` leaves a part as it is. The result is checked whole before it is saved.
#[derive(Debug, Clone, Default)]
pub struct RuleChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub position: Option<i32>,
    pub on: Option<Vec<Trigger>>,
    pub condition: Option<String>,
    pub changed: Option<Vec<String>>,
    pub actions: Option<Vec<RawAction>>,
}

impl RuleChanges {
    pub fn apply(self, rule: &mut Rule) {
        let Self {
            name,
            enabled,
            position,
            on,
            condition,
            changed,
            actions,
        } = self;
        fn set<T>(slot: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *slot = value;
            }
        }
        set(&mut rule.name, name);
        set(&mut rule.enabled, enabled);
        set(&mut rule.position, position);
        set(&mut rule.definition.on, on);
        set(&mut rule.definition.condition, condition);
        set(&mut rule.definition.changed, changed);
        set(&mut rule.definition.actions, actions);
    }
}

/// A TestRule request: a rule (saved, or as it would be saved), a ticket and the write to imagine.
#[derive(Debug, Clone)]
pub struct RuleTest {
    pub rule_id: Option<i64>,
    /// Used when `rule_id` is `None`; its id is 0.
    pub rule: Option<Rule>,
    pub ticket_id: i64,
    pub event: Trigger,
    pub changed_fields: BTreeSet<TicketField>,
    /// Applied to the ticket (and rolled back) before the rule is checked.
    pub changes: TicketChanges,
}

/// What TestRule found.
#[derive(Debug, Clone)]
pub struct RuleTestOutcome {
    pub fires: bool,
    pub reason: String,
    pub actions: Vec<TestedAction>,
    /// The ticket as the actions leave it, when the rule fires.
    pub ticket: Option<super::ticket::Ticket>,
}

#[derive(Debug, Clone)]
pub struct TestedAction {
    pub action: RawAction,
    pub result: String,
    pub changes: Vec<super::event::FieldChange>,
}

/// A rule ready to run: its definition parsed.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub on: BTreeSet<Trigger>,
    pub condition: Condition,
    pub changed: BTreeSet<TicketField>,
    pub actions: Vec<Action>,
}

/// One thing a rule does, checked.
#[derive(Debug, Clone)]
pub enum Action {
    /// Field changes (set_field, add_tag, remove_tag, assign), applied to the ticket as one change.
    Change(FieldAction),
    AddInternalComment(CommentTemplate),
    SendWebhook(i64),
}

#[derive(Debug, Clone)]
pub enum FieldAction {
    /// Boxed: a whole change set beside single tags and addresses.
    Set(Box<TicketChanges>),
    AddTag(String),
    RemoveTag(String),
    AssignByEmail(String),
}

/// Why a compiled rule does not fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    Trigger,
    Changed,
    Condition,
}

impl Miss {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Trigger => "the write is none of the rule's `on` events",
            Self::Changed => "the write changed none of the rule's `changed` fields",
            Self::Condition => "the ticket does not match the rule's condition",
        }
    }
}

impl CompiledRule {
    /// Whether the rule fires for a write of `triggers` that changed `fields`, leaving the ticket as `ticket`.
    pub fn check(
        &self,
        triggers: &BTreeSet<Trigger>,
        fields: &BTreeSet<TicketField>,
        ticket: &TicketContext,
    ) -> std::result::Result<(), Miss> {
        if self.on.is_disjoint(triggers) {
            return Err(Miss::Trigger);
        }
        if !self.changed.is_empty() && self.changed.is_disjoint(fields) {
            return Err(Miss::Changed);
        }
        if !self.condition.matches(ticket) {
            return Err(Miss::Condition);
        }
        Ok(())
    }
}

/// Checks a whole definition; errors name their field under `field` (e.g. `rule`). Returns the compiled form
/// and the custom property names it refers to, which the caller checks against the definitions.
pub fn compile(
    field: &str,
    definition: &RuleDefinition,
) -> Result<(CompiledRule, BTreeSet<String>)> {
    if definition.on.is_empty() {
        return Err(Error::invalid(
            format!("{field}.on"),
            "name at least one event: TICKET_CREATED, TICKET_UPDATED or COMMENT_ADDED",
        ));
    }
    let condition = Condition::parse(&format!("{field}.condition"), &definition.condition)?;
    let mut properties = condition.property_names();
    let mut changed = BTreeSet::new();
    for (index, name) in definition.changed.iter().enumerate() {
        let field = TicketField::parse(name)
            .filter(|field| field.rules().diffed)
            .ok_or_else(|| {
                Error::invalid(
                    format!("{field}.changed[{index}]"),
                    format!(
                        "{name:?} is not a field a write changes; expected one of {}, properties.<name>",
                        TicketField::names_where(|field| field.rules().diffed)
                    ),
                )
            })?;
        if let Some(name) = field.property_name() {
            properties.insert(name.to_owned());
        }
        changed.insert(field);
    }
    if definition.actions.is_empty() || definition.actions.len() > MAX_ACTIONS {
        return Err(Error::invalid(
            format!("{field}.actions"),
            format!("give 1 to {MAX_ACTIONS} actions"),
        ));
    }
    let mut actions = Vec::with_capacity(definition.actions.len());
    for (index, raw) in definition.actions.iter().enumerate() {
        let at = format!("{field}.actions[{index}]");
        let action = compile_action(&at, raw).map_err(|error| error.within(&at))?;
        if let RawAction::SetField { path, .. } = raw
            && let Some(TicketField::Property(name)) = TicketField::parse(path)
        {
            properties.insert(name);
        }
        if let Action::AddInternalComment(template) = &action {
            properties.extend(template.property_names());
        }
        actions.push(action);
    }
    let on = definition.on.iter().copied().collect();
    Ok((
        CompiledRule {
            on,
            condition,
            changed,
            actions,
        },
        properties,
    ))
}

/// Errors name the field inside the action (`set_field.value`); the caller prefixes the action's path.
fn compile_action(_at: &str, raw: &RawAction) -> Result<Action> {
    Ok(match raw {
        RawAction::SetField { path, value } => {
            Action::Change(FieldAction::Set(Box::new(set_field_changes(path, value)?)))
        }
        RawAction::AddTag(tag) => Action::Change(FieldAction::AddTag(one_tag("add_tag", tag)?)),
        RawAction::RemoveTag(tag) => {
            Action::Change(FieldAction::RemoveTag(one_tag("remove_tag", tag)?))
        }
        RawAction::Assign(Assignee::AgentId(id)) => {
            let id = parse_reference("assign.agent_id", id.clone())?;
            if id.is_empty() {
                return Err(Error::invalid("assign.agent_id", "is required"));
            }
            Action::Change(FieldAction::Set(Box::new(TicketChanges {
                assignee_id: Some(id),
                ..Default::default()
            })))
        }
        RawAction::Assign(Assignee::AgentEmail(email)) => {
            super::agent::check_email_at("assign.agent_email", email)?;
            Action::Change(FieldAction::AssignByEmail(super::agent::email_key(email)))
        }
        RawAction::AddInternalComment { body } => {
            Action::AddInternalComment(CommentTemplate::parse("add_internal_comment.body", body)?)
        }
        RawAction::SendWebhook { webhook_id } => {
            if *webhook_id <= 0 {
                return Err(Error::invalid(
                    "send_webhook.webhook_id",
                    "name a webhook by its id",
                ));
            }
            Action::SendWebhook(*webhook_id)
        }
    })
}

fn one_tag(field: &str, tag: &str) -> Result<String> {
    parse_tags(vec![tag.to_owned()])
        .map_err(|error| Error::invalid(field, error.to_string()))?
        .pop()
        .ok_or_else(|| Error::invalid(field, "is required"))
}

/// The change `set_field{path, value}` makes, in the text form of [`crate::domain::event::FieldChange`]
/// values; errors name `set_field.path` or `set_field.value`.
pub fn set_field_changes(path: &str, value: &str) -> Result<TicketChanges> {
    let mut changes = TicketChanges::default();
    set_field(&mut changes, path, value)?;
    Ok(changes)
}

/// Adds `set_field{path, value}` to `changes` (a later value for a field replaces an earlier one).
pub fn set_field(changes: &mut TicketChanges, path: &str, value: &str) -> Result<()> {
    let field = TicketField::parse(path)
        .filter(|field| field.rules().writable && !field.create_only())
        .ok_or_else(|| {
            Error::invalid(
                "set_field.path",
                format!(
                    "{path:?} is not a field a rule may set; expected one of {}, properties.<name>",
                    TicketField::names_where(|field| field.rules().writable
                        && !field.create_only()
                        && *field != TicketField::Properties)
                ),
            )
        })?;
    let invalid = |why: String| Error::invalid("set_field.value", why);
    let integer = || {
        value
            .parse::<i64>()
            .map_err(|_| invalid(format!("{path}: {value:?} is not an id")))
    };
    let text = || parse_reference("set_field.value", value.to_owned());
    match field {
        TicketField::Subject => {
            changes.subject =
                Some(parse_subject(value).map_err(|error| invalid(error.to_string()))?)
        }
        TicketField::Content => changes.content = Some(value.to_owned()),
        TicketField::PipelineId => changes.pipeline_id = Some(integer()?),
        TicketField::StageId => changes.stage_id = Some(integer()?),
        TicketField::Priority => {
            changes.priority = Some(if value.is_empty() {
                None
            } else {
                Some(Priority::from_stored(&value.to_ascii_uppercase()).ok_or_else(|| {
                    invalid(format!(
                        "{value:?} is not a priority (LOW, MEDIUM, HIGH, URGENT, or empty to clear)"
                    ))
                })?)
            })
        }
        TicketField::RequesterId => changes.requester_id = Some(text()?),
        TicketField::AssigneeId => changes.assignee_id = Some(text()?),
        TicketField::OrganizationId => changes.organization_id = Some(text()?),
        TicketField::TicketType => changes.ticket_type = Some(text()?),
        TicketField::ProjectId => changes.project_id = Some(text()?),
        TicketField::Tags => {
            let tags = value
                .split(',')
                .filter(|tag| !tag.trim().is_empty())
                .map(str::to_owned)
                .collect();
            changes.tags = Some(parse_tags(tags).map_err(|error| invalid(error.to_string()))?)
        }
        TicketField::Property(name) => {
            if !value.is_empty() {
                super::ticket::check_property(&name, value)
                    .map_err(|error| invalid(error.to_string()))?;
            }
            changes
                .property_updates
                .insert(name, (!value.is_empty()).then(|| value.to_owned()));
        }
        // Refused by the filter above: read-only, create-only or the whole map.
        TicketField::Id
        | TicketField::ExternalId
        | TicketField::Properties
        | TicketField::CreateTime
        | TicketField::UpdateTime
        | TicketField::CloseTime
        | TicketField::ArchiveTime
        | TicketField::Archived
        | TicketField::Etag => {
            return Err(Error::invalid(
                "set_field.path",
                format!("{path:?} cannot be set"),
            ));
        }
    }
    Ok(())
}

/// A comment body with `{{ticket.<path>}}` placeholders over the card binding paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(TicketPath),
}

impl CommentTemplate {
    /// Refuses unknown placeholders and unclosed braces, naming `field` and the byte offset.
    pub fn parse(field: &str, body: &str) -> Result<Self> {
        if body.trim().is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        let length = body.chars().count();
        if length > COMMENT_MAX_CHARS {
            return Err(Error::invalid(
                field,
                format!("must be at most {COMMENT_MAX_CHARS} characters, got {length}"),
            ));
        }
        let mut pieces = Vec::new();
        let mut rest = body;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            let Some(length) = rest[start + 2..].find("}}") else {
                return Err(Error::invalid(
                    field,
                    format!(
                        "at byte {}: a placeholder opened with {{{{ is never closed",
                        offset + start
                    ),
                ));
            };
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let name = rest[start + 2..start + 2 + length].trim();
            let path = name
                .strip_prefix("ticket.")
                .ok_or_else(|| {
                    format!("unknown placeholder {{{{{name}}}}}; placeholders start with ticket.")
                })
                .and_then(path_from_str)
                .map_err(|why| {
                    Error::invalid(field, format!("at byte {}: {why}", offset + start))
                })?;
            pieces.push(Piece::Field(path));
            let end = start + 2 + length + 2;
            offset += end;
            rest = &rest[end..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    fn property_names(&self) -> impl Iterator<Item = String> + '_ {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Field(TicketPath::Field(TicketField::Property(name))) => Some(name.clone()),
            _ => None,
        })
    }

    /// The body with every placeholder replaced by the ticket's value (empty when unset).
    pub fn render(&self, ticket: &TicketContext) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::Field(TicketPath::Field(field)) => field.text(ticket.ticket, timestamp),
                Piece::Field(TicketPath::PipelineLabel) => ticket.pipeline_label.to_owned(),
                Piece::Field(TicketPath::StageLabel) => ticket.stage_label.to_owned(),
                Piece::Field(TicketPath::StageState) => ticket.stage_state.as_str().to_owned(),
            })
            .collect()
    }
}

/// Checks a rule's name.
pub fn check_name(field: &str, name: &str) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    let length = trimmed.chars().count();
    if length > NAME_MAX_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be at most {NAME_MAX_CHARS} characters, got {length}"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(actions: Vec<RawAction>) -> RuleDefinition {
        RuleDefinition {
            on: vec![Trigger::TicketCreated],
            condition: String::new(),
            changed: Vec::new(),
            actions,
        }
    }

    #[test]
    fn every_history_event_kind_has_a_trigger_or_none_on_purpose() {
        use strum::IntoEnumIterator;
        for kind in EventKind::iter() {
            // Compiles only while `Trigger::of` matches every kind; asserts the association kinds stay out.
            let association = matches!(
                kind,
                EventKind::AssociationAdded | EventKind::AssociationRemoved
            );
            assert_eq!(Trigger::of(kind).is_none(), association, "{kind:?}");
        }
    }

    #[test]
    fn unknown_placeholders_are_refused_when_saved() {
        let error = compile(
            "rule",
            &definition(vec![RawAction::AddInternalComment {
                body: "Escalated: {{ticket.subjekt}}".into(),
            }]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(
                "rule.actions[0].add_internal_comment.body: at byte 11: unknown ticket field"
            ),
            "{error}"
        );
        let error = compile(
            "rule",
            &definition(vec![RawAction::AddInternalComment {
                body: "{{subject}}".into(),
            }]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("placeholders start with ticket."), "{error}");
    }

    #[test]
    fn set_field_refuses_fields_a_rule_cannot_set() {
        for (path, value, expected) in [
            ("create_time", "x", "set_field.path"),
            ("external_id", "x", "set_field.path"),
            ("priority", "SOON", "set_field.value"),
            ("stage_id", "abc", "set_field.value"),
            ("subject", "  ", "set_field.value"),
        ] {
            let error = set_field_changes(path, value).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{path}={value}: {error}");
        }
        let changes = set_field_changes("priority", "urgent").unwrap();
        assert_eq!(changes.priority, Some(Some(Priority::Urgent)));
        let changes = set_field_changes("properties.region", "").unwrap();
        assert_eq!(changes.property_updates.get("region"), Some(&None));
    }
}
