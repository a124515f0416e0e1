//! `ticketd.v1.RuleService`.

use std::collections::BTreeSet;

use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, decode_page_token, encode_page_token, idempotent_requests, origin,
    query_fingerprint, tickets::ticket_to_proto, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        field::TicketField,
        page::{Cursor, page_size},
        rule::{
            Assignee, NewRule, RawAction, Rule, RuleChanges, RuleDefinition, RuleTest, Trigger,
            set_field,
        },
        ticket::TicketChanges,
    },
    proto::{
        self, assign_action, rule::TriggerEvent, rule_action, rule_service_server::RuleService,
        test_rule_request,
    },
    store::Store,
};

idempotent_requests! {
    proto::CreateRuleRequest => "ticketd.v1.RuleService/CreateRule",
    proto::UpdateRuleRequest => "ticketd.v1.RuleService/UpdateRule",
}

const UPDATABLE_PATHS: &[&str] = &[
    "name",
    "enabled",
    "position",
    "on",
    "condition",
    "changed",
    "actions",
];
const OUTPUT_ONLY_PATHS: &[&str] = &["id", "etag", "create_time", "update_time"];

/// Serves automation rules from the store.
pub struct RuleApi {
    store: Store,
}

impl RuleApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl RuleService for RuleApi {
    async fn create_rule(
        &self,
        request: Request<proto::CreateRuleRequest>,
    ) -> Result<Response<proto::Rule>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let rule = request
            .into_inner()
            .rule
            .ok_or_else(|| Error::invalid("rule", "is required"))?;
        let new = new_rule_from_proto(rule)?;
        let created = self.store.create_rule(new, &origin).await?;
        Ok(Response::new(rule_to_proto(created)))
    }

    async fn get_rule(
        &self,
        request: Request<proto::GetRuleRequest>,
    ) -> Result<Response<proto::Rule>, Status> {
        let id = required_id("id", request.get_ref().id)?;
        Ok(Response::new(rule_to_proto(self.store.get_rule(id).await?)))
    }

    async fn list_rules(
        &self,
        request: Request<proto::ListRulesRequest>,
    ) -> Result<Response<proto::ListRulesResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint("rules order=position,id");
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let page = self.store.list_rules(page_size, after).await?;
        Ok(Response::new(proto::ListRulesResponse {
            rules: page.items.into_iter().map(rule_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_rule(
        &self,
        request: Request<proto::UpdateRuleRequest>,
    ) -> Result<Response<proto::Rule>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let rule = request
            .rule
            .ok_or_else(|| Error::invalid("rule", "is required"))?;
        let id = required_id("rule.id", rule.id)?;
        let etag = rule.etag.clone();
        let changes = changes_from_proto(rule, request.update_mask)?;
        let updated = self.store.update_rule(id, &etag, changes, &origin).await?;
        Ok(Response::new(rule_to_proto(updated)))
    }

    async fn delete_rule(
        &self,
        request: Request<proto::DeleteRuleRequest>,
    ) -> Result<Response<proto::DeleteRuleResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("id", request.id)?;
        self.store.delete_rule(id, &request.etag).await?;
        Ok(Response::new(proto::DeleteRuleResponse {}))
    }

    async fn test_rule(
        &self,
        request: Request<proto::TestRuleRequest>,
    ) -> Result<Response<proto::TestRuleResponse>, Status> {
        let request = request.into_inner();
        let (rule_id, rule) = match request.rule_source {
            Some(test_rule_request::RuleSource::RuleId(id)) => {
                (Some(required_id("rule_id", id)?), None)
            }
            Some(test_rule_request::RuleSource::Rule(rule)) => {
                let new = new_rule_from_proto(rule)?;
                let unsaved = Rule {
                    id: 0,
                    name: new.name,
                    enabled: new.enabled,
                    position: new.position.unwrap_or_default(),
                    definition: new.definition,
                    version: 0,
                    create_time: crate::domain::now(),
                    update_time: crate::domain::now(),
                };
                (None, Some(unsaved))
            }
            None => {
                return Err(Error::invalid("rule_source", "set rule_id or rule").into());
            }
        };
        let ticket_id = required_id("ticket_id", request.ticket_id)?;
        let event = trigger_from_proto("event", request.event)?;
        let mut changed_fields = BTreeSet::new();
        for (index, name) in request.changed_fields.iter().enumerate() {
            let field = TicketField::parse(name).ok_or_else(|| {
                Error::invalid(
                    format!("changed_fields[{index}]"),
                    format!("unknown ticket field {name:?}"),
                )
            })?;
            changed_fields.insert(field);
        }
        let mut changes = TicketChanges::default();
        for (index, change) in request.changes.iter().enumerate() {
            set_field(&mut changes, &change.path, &change.value)
                .map_err(|error| error.within(&format!("changes[{index}]")))?;
            if let Some(field) = TicketField::parse(&change.path) {
                changed_fields.insert(field);
            }
        }
        let outcome = self
            .store
            .test_rule(RuleTest {
                rule_id,
                rule,
                ticket_id,
                event,
                changed_fields,
                changes,
            })
            .await?;
        Ok(Response::new(proto::TestRuleResponse {
            fires: outcome.fires,
            reason: outcome.reason,
            actions: outcome
                .actions
                .into_iter()
                .map(|tested| proto::TestedAction {
                    action: Some(action_to_proto(tested.action)),
                    result: tested.result,
                    changes: tested
                        .changes
                        .into_iter()
                        .map(|change| proto::FieldChange {
                            field: change.field.to_string(),
                            old_value: change.old_value,
                            new_value: change.new_value,
                        })
                        .collect(),
                })
                .collect(),
            ticket: outcome.ticket.map(ticket_to_proto),
        }))
    }
}

fn required_id(field: &str, id: i64) -> Result<i64, Error> {
    if id <= 0 {
        return Err(Error::invalid(field, "is required (a positive id)"));
    }
    Ok(id)
}

fn new_rule_from_proto(rule: proto::Rule) -> Result<NewRule, Error> {
    let name = crate::domain::rule::check_name("rule.name", &rule.name)?;
    let definition = RuleDefinition {
        on: triggers_from_proto(&rule.on)?,
        condition: rule.condition,
        changed: rule.changed,
        actions: actions_from_proto(rule.actions)?,
    };
    Ok(NewRule {
        name,
        enabled: rule.enabled,
        // 0 is "unset" in proto3: a rule placed first must say so through UpdateRule's mask.
        position: (rule.position != 0).then_some(rule.position),
        definition,
    })
}

fn trigger_from_proto(field: &str, raw: i32) -> Result<Trigger, Error> {
    match TriggerEvent::try_from(raw) {
        Ok(TriggerEvent::TicketCreated) => Ok(Trigger::TicketCreated),
        Ok(TriggerEvent::TicketUpdated) => Ok(Trigger::TicketUpdated),
        Ok(TriggerEvent::CommentAdded) => Ok(Trigger::CommentAdded),
        Ok(TriggerEvent::Unspecified) | Err(_) => Err(Error::invalid(
            field,
            format!("{raw} is not an event; use TICKET_CREATED, TICKET_UPDATED or COMMENT_ADDED"),
        )),
    }
}

fn trigger_to_proto(trigger: Trigger) -> TriggerEvent {
    match trigger {
        Trigger::TicketCreated => TriggerEvent::TicketCreated,
        Trigger::TicketUpdated => TriggerEvent::TicketUpdated,
        Trigger::CommentAdded => TriggerEvent::CommentAdded,
    }
}

fn triggers_from_proto(raw: &[i32]) -> Result<Vec<Trigger>, Error> {
    raw.iter()
        .enumerate()
        .map(|(index, &value)| trigger_from_proto(&format!("rule.on[{index}]"), value))
        .collect()
}

fn actions_from_proto(actions: Vec<proto::RuleAction>) -> Result<Vec<RawAction>, Error> {
    actions
        .into_iter()
        .enumerate()
        .map(|(index, action)| {
            let field = format!("rule.actions[{index}]");
            Ok(match action.action {
                Some(rule_action::Action::SetField(set)) => RawAction::SetField {
                    path: set.path,
                    value: set.value,
                },
                Some(rule_action::Action::AddTag(tag)) => RawAction::AddTag(tag),
                Some(rule_action::Action::RemoveTag(tag)) => RawAction::RemoveTag(tag),
                Some(rule_action::Action::Assign(assign)) => match assign.assignee {
                    Some(assign_action::Assignee::AgentId(id)) => {
                        RawAction::Assign(Assignee::AgentId(id))
                    }
                    Some(assign_action::Assignee::AgentEmail(email)) => {
                        RawAction::Assign(Assignee::AgentEmail(email))
                    }
                    None => {
                        return Err(Error::invalid(
                            format!("{field}.assign"),
                            "set agent_id or agent_email",
                        ));
                    }
                },
                Some(rule_action::Action::AddInternalComment(comment)) => {
                    RawAction::AddInternalComment { body: comment.body }
                }
                Some(rule_action::Action::SendWebhook(send)) => RawAction::SendWebhook {
                    webhook_id: send.webhook_id,
                },
                None => return Err(Error::invalid(field, "set one action")),
            })
        })
        .collect()
}

fn action_to_proto(action: RawAction) -> proto::RuleAction {
    let action = match action {
        RawAction::SetField { path, value } => {
            rule_action::Action::SetField(proto::SetFieldAction { path, value })
        }
        RawAction::AddTag(tag) => rule_action::Action::AddTag(tag),
        RawAction::RemoveTag(tag) => rule_action::Action::RemoveTag(tag),
        RawAction::Assign(assignee) => rule_action::Action::Assign(proto::AssignAction {
            assignee: Some(match assignee {
                Assignee::AgentId(id) => assign_action::Assignee::AgentId(id),
                Assignee::AgentEmail(email) => assign_action::Assignee::AgentEmail(email),
            }),
        }),
        RawAction::AddInternalComment { body } => {
            rule_action::Action::AddInternalComment(proto::AddInternalCommentAction { body })
        }
        RawAction::SendWebhook { webhook_id } => {
            rule_action::Action::SendWebhook(proto::SendWebhookAction { webhook_id })
        }
    };
    proto::RuleAction {
        action: Some(action),
    }
}

/// With an empty mask, every field the request sets (AIP-134); `enabled: false` and position 0 need a mask.
fn fields_set(rule: &proto::Rule) -> Vec<&'static str> {
    let set = [
        ("name", !rule.name.is_empty()),
        ("enabled", rule.enabled),
        ("position", rule.position != 0),
        ("on", !rule.on.is_empty()),
        ("condition", !rule.condition.is_empty()),
        ("changed", !rule.changed.is_empty()),
        ("actions", !rule.actions.is_empty()),
    ];
    set.into_iter()
        .filter_map(|(path, set)| set.then_some(path))
        .collect()
}

fn changes_from_proto(
    rule: proto::Rule,
    mask: Option<prost_types::FieldMask>,
) -> Result<RuleChanges, Error> {
    let mut changes = RuleChanges::default();
    for path in update_paths(mask, || fields_set(&rule)) {
        match path.as_str() {
            "name" => {
                changes.name = Some(crate::domain::rule::check_name("rule.name", &rule.name)?)
            }
            "enabled" => changes.enabled = Some(rule.enabled),
            "position" => changes.position = Some(rule.position),
            "on" => changes.on = Some(triggers_from_proto(&rule.on)?),
            "condition" => changes.condition = Some(rule.condition.clone()),
            "changed" => changes.changed = Some(rule.changed.clone()),
            "actions" => changes.actions = Some(actions_from_proto(rule.actions.clone())?),
            other => return Err(bad_mask_path(other, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS)),
        }
    }
    Ok(changes)
}

fn rule_to_proto(rule: Rule) -> proto::Rule {
    let etag = rule.etag();
    let RuleDefinition {
        on,
        condition,
        changed,
        actions,
    } = rule.definition;
    proto::Rule {
        id: rule.id,
        name: rule.name,
        enabled: rule.enabled,
        position: rule.position,
        on: on
            .into_iter()
            .map(|trigger| trigger_to_proto(trigger).into())
            .collect(),
        condition,
        changed,
        actions: actions.into_iter().map(action_to_proto).collect(),
        etag,
        create_time: Some(timestamp(rule.create_time)),
        update_time: Some(timestamp(rule.update_time)),
    }
}
