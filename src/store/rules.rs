//! Automation rules, stored, and the pass that runs them inside every ticket write.
//!
//! The pass runs at commit, after the write's own changes and before the outbox append, so a rule sees the
//! ticket exactly as the write left it and its changes commit (or fail) with the write. Each firing runs
//! under a savepoint: a rule whose action cannot apply any more (a deleted stage, an agent who left) is rolled
//! back alone, logged and counted, and the client's write still commits — a broken rule must not take the
//! desk's writes down with it. Faults of the database itself (lost connection, contention) still fail the
//! write, so it is retried whole.

use std::collections::BTreeSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    Store, WriteTxn, agents, comments, entities::rule, from_json, properties, tickets, to_json,
};
use crate::domain::{
    Error, Origin,
    card::TicketContext,
    comment::Visibility,
    etag,
    event::{FieldChange, Notify, SideEffects},
    now,
    page::{Cursor, Page},
    pipeline::{Pipeline, TicketState},
    rule::{
        Action, CompiledRule, FieldAction, MAX_FIRINGS_PER_PASS, NewRule, Rule, RuleChanges,
        RuleDefinition, RuleTest, RuleTestOutcome, TestedAction, Trigger, compile,
    },
    ticket::{Ticket, TicketChanges},
};

const RULE: &str = Rule::RESOURCE;

impl Store {
    /// Saves a rule after checking it whole; without a position it goes after the last rule.
    pub async fn create_rule(&self, new: NewRule, origin: &Origin) -> Result<Rule, Error> {
        compile("rule", &new.definition)?;
        self.write_config(origin.request.as_ref(), async |txn| {
            check_properties(txn, &new.definition).await?;
            let position = match new.position {
                Some(position) => position,
                None => next_position(&**txn).await?,
            };
            let now = now();
            let row = rule::Entity::insert(rule::ActiveModel {
                id: Default::default(),
                name: Set(new.name.clone()),
                enabled: Set(new.enabled),
                position: Set(position),
                definition: Set(to_json(&new.definition)?),
                version: Set(1),
                create_time: Set(now),
                update_time: Set(now),
            })
            .exec_with_returning(&**txn)
            .await?;
            rule_to_domain(row)
        })
        .await
    }

    pub async fn get_rule(&self, id: i64) -> Result<Rule, Error> {
        rule::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(rule_to_domain)
            .transpose()?
            .ok_or_else(|| Error::not_found(RULE, id))
    }

    /// One page of rules in running order (position, then id), strictly after `after`.
    pub async fn list_rules(
        &self,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<Rule>, Error> {
        let mut select = rule::Entity::find();
        if let Some(after) = after {
            let position = i32::try_from(after.key)
                .map_err(|_| Error::invalid("page_token", "does not belong to this listing"))?;
            select = select.filter(
                sea_orm::Condition::any()
                    .add(rule::Column::Position.gt(position))
                    .add(
                        sea_orm::Condition::all()
                            .add(rule::Column::Position.eq(position))
                            .add(rule::Column::Id.gt(after.id)),
                    ),
            );
        }
        let rules = select
            .order_by_asc(rule::Column::Position)
            .order_by_asc(rule::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(rule_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(rules, page_size, |rule| Cursor {
            key: i64::from(rule.position),
            id: rule.id,
        }))
    }

    /// Applies `changes` when `sent_etag` is empty or current; the result is checked whole, as on create.
    pub async fn update_rule(
        &self,
        id: i64,
        sent_etag: &str,
        changes: RuleChanges,
        origin: &Origin,
    ) -> Result<Rule, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let row = rule::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(RULE, id))?;
            let mut rule = rule_to_domain(row)?;
            etag::check(RULE, id, rule.version, sent_etag)?;
            changes.apply(&mut rule);
            compile("rule", &rule.definition)?;
            check_properties(txn, &rule.definition).await?;
            let updated = rule::Entity::update(rule::ActiveModel {
                id: Set(id),
                name: Set(rule.name.clone()),
                enabled: Set(rule.enabled),
                position: Set(rule.position),
                definition: Set(to_json(&rule.definition)?),
                version: Set(rule.version + 1),
                update_time: Set(now()),
                create_time: Default::default(),
            })
            .exec(&**txn)
            .await?;
            rule_to_domain(updated)
        })
        .await
    }

    pub async fn delete_rule(&self, id: i64, sent_etag: &str) -> Result<(), Error> {
        self.write_config(None, async |txn| {
            let row = rule::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(RULE, id))?;
            etag::check(RULE, id, row.version, sent_etag)?;
            rule::Entity::delete_by_id(id).exec(&**txn).await?;
            Ok(())
        })
        .await
    }

    /// A dry run: the described write and the rule's actions run for real inside a transaction that is then
    /// rolled back, so the answer is exactly what a write would do, and nothing is kept.
    pub async fn test_rule(&self, test: RuleTest) -> Result<RuleTestOutcome, Error> {
        let rule = match test.rule_id {
            Some(id) => self.get_rule(id).await?,
            None => test
                .rule
                .clone()
                .ok_or_else(|| Error::invalid("rule_source", "give a saved rule's id or a rule"))?,
        };
        let (compiled, _) = compile("rule", &rule.definition)?;
        let txn = self.begin_write().await?;
        if !test.changes.fields().is_empty() {
            let definitions = properties::definitions_for_write(&txn).await?;
            let origin = Origin {
                actor_id: "test".to_owned(),
                ..Default::default()
            };
            tickets::update_locked(
                &txn,
                &definitions,
                test.ticket_id,
                "",
                test.changes.clone(),
                None,
                &origin,
            )
            .await
            .map_err(|error| error.within("changes"))?;
        }
        let ticket =
            tickets::lock_ticket(&txn, test.ticket_id)
                .await
                .map_err(|error| match error {
                    Error::NotFound { .. } => Error::invalid(
                        "ticket_id",
                        format!("ticket {} does not exist", test.ticket_id),
                    ),
                    other => other,
                })?;
        let pipeline = tickets::existing_pipeline(&txn, ticket.pipeline_id).await?;
        let triggers = BTreeSet::from([test.event]);
        if let Err(miss) = compiled.check(
            &triggers,
            &test.changed_fields,
            &context(&ticket, &pipeline),
        ) {
            return Ok(RuleTestOutcome {
                fires: false,
                reason: miss.reason().to_owned(),
                actions: Vec::new(),
                ticket: None,
            });
        }
        let origin = Origin {
            actor_id: rule.actor_id(),
            request: None,
            side_effects: SideEffects::default(),
        };
        let mut actions = Vec::with_capacity(compiled.actions.len());
        for (action, raw) in compiled.actions.iter().zip(&rule.definition.actions) {
            let mark = txn.queued_len();
            let cause = mark.saturating_sub(1);
            let applied = txn
                .with_cause(cause, async || {
                    apply(&txn, action, test.ticket_id, &origin).await
                })
                .await;
            let result = match applied {
                Ok(done) => done,
                Err(error) => format!("fails: {error}"),
            };
            actions.push(TestedAction {
                action: raw.clone(),
                result,
                changes: txn
                    .queued_since(mark)
                    .into_iter()
                    .flat_map(|queued| queued.changes)
                    .collect(),
            });
        }
        let ticket = tickets::lock_ticket(&txn, test.ticket_id).await?;
        // Dropped without commit: rolled back, and nothing reaches the outbox.
        drop(txn);
        Ok(RuleTestOutcome {
            fires: true,
            reason: String::new(),
            actions,
            ticket: Some(ticket),
        })
    }
}

/// Runs the enabled rules over every ticket the transaction's events since the last run touched (see the
/// module doc). Runs at commit, and earlier for writes that answer with tickets ([`IntoCommitted`]).
pub(super) async fn run(txn: &WriteTxn) -> Result<(), Error> {
    let mut passes = passes(txn);
    txn.rules_ran_until(txn.queued_len());
    if passes.is_empty() {
        return Ok(());
    }
    let config = txn.config().await?;
    if config.rules.is_empty() {
        return Ok(());
    }
    for pass in &mut passes {
        run_pass(txn, &config.rules, pass).await?;
    }
    txn.rules_ran_until(txn.queued_len());
    Ok(())
}

/// An answer made of tickets, brought up to date with what rules changed after the write made it.
pub(super) trait IntoCommitted {
    fn into_committed(self, txn: &WriteTxn) -> Self;
}

impl IntoCommitted for Ticket {
    fn into_committed(self, txn: &WriteTxn) -> Self {
        txn.latest_written(self)
    }
}

impl IntoCommitted for Vec<Ticket> {
    fn into_committed(self, txn: &WriteTxn) -> Self {
        self.into_iter()
            .map(|ticket| txn.latest_written(ticket))
            .collect()
    }
}

/// What one ticket's write looked like to the rules, growing as rules fire.
struct Pass {
    ticket_id: i64,
    triggers: BTreeSet<Trigger>,
    fields: BTreeSet<crate::domain::field::TicketField>,
    /// The newest event of the ticket: what a rule firing now was set off by.
    last_event: usize,
    asked: SideEffects,
}

/// One pass per ticket with events that may set rules off, in the order the write touched them. A ticket
/// whose write skips automations, or that was created directly in a CLOSED stage without NOTIFY_ALL, has none.
fn passes(txn: &WriteTxn) -> Vec<Pass> {
    let mut passes: Vec<Pass> = Vec::new();
    let mut excluded = BTreeSet::new();
    for queued in txn.queued_since(txn.rules_ran()) {
        let quiet_closed = queued.created_closed && queued.asked.notify != Notify::All;
        if queued.asked.skip_automations || quiet_closed {
            excluded.insert(queued.ticket_id);
            continue;
        }
        let Some(trigger) = Trigger::of(queued.kind) else {
            continue;
        };
        let pass = match passes
            .iter_mut()
            .find(|pass| pass.ticket_id == queued.ticket_id)
        {
            Some(pass) => pass,
            None => {
                passes.push(Pass {
                    ticket_id: queued.ticket_id,
                    triggers: BTreeSet::new(),
                    fields: BTreeSet::new(),
                    last_event: queued.index,
                    asked: queued.asked,
                });
                passes.last_mut().expect("just pushed")
            }
        };
        pass.triggers.insert(trigger);
        pass.fields
            .extend(queued.changes.into_iter().map(|change| change.field));
        pass.last_event = queued.index;
    }
    passes.retain(|pass| !excluded.contains(&pass.ticket_id));
    passes
}

async fn run_pass(
    txn: &WriteTxn,
    rules: &[(Rule, CompiledRule)],
    pass: &mut Pass,
) -> Result<(), Error> {
    let mut fired = BTreeSet::new();
    loop {
        if fired.len() == MAX_FIRINGS_PER_PASS {
            tracing::warn!(
                ticket_id = pass.ticket_id,
                rules = ?fired,
                "rule pass stopped after {MAX_FIRINGS_PER_PASS} firings"
            );
            metrics::counter!("ticketd_rule_passes_capped_total").increment(1);
            return Ok(());
        }
        let ticket = tickets::lock_ticket(txn, pass.ticket_id).await?;
        let pipeline = tickets::existing_pipeline(txn, ticket.pipeline_id).await?;
        let context = context(&ticket, &pipeline);
        // From the top each time: an earlier rule may match what a later one just changed (Zendesk's cycle).
        let Some((rule, compiled)) = rules.iter().find(|(rule, compiled)| {
            !fired.contains(&rule.id)
                && compiled
                    .check(&pass.triggers, &pass.fields, &context)
                    .is_ok()
        }) else {
            return Ok(());
        };
        fired.insert(rule.id);
        let mark = txn.outbox_mark(pass.ticket_id);
        txn.execute_unprepared("SAVEPOINT ticketd_rule").await?;
        let outcome = txn
            .with_cause(pass.last_event, async || {
                fire(txn, rule, compiled, pass.ticket_id, pass.asked).await
            })
            .await;
        match outcome {
            Ok(()) => {
                txn.execute_unprepared("RELEASE SAVEPOINT ticketd_rule")
                    .await?;
                metrics::counter!("ticketd_rule_firings_total", "outcome" => "applied")
                    .increment(1);
            }
            Err(error) if rule_could_not_apply(&error) => {
                txn.execute_unprepared("ROLLBACK TO SAVEPOINT ticketd_rule")
                    .await?;
                txn.execute_unprepared("RELEASE SAVEPOINT ticketd_rule")
                    .await?;
                txn.rewind(mark);
                tracing::warn!(
                    rule_id = rule.id,
                    ticket_id = pass.ticket_id,
                    %error,
                    "rule could not apply; its changes were rolled back, the write goes on"
                );
                metrics::counter!("ticketd_rule_firings_total", "outcome" => "failed").increment(1);
                continue;
            }
            Err(error) => return Err(error),
        }
        for queued in txn.queued_since(mark.events) {
            if queued.ticket_id != pass.ticket_id {
                continue;
            }
            if let Some(trigger) = Trigger::of(queued.kind) {
                pass.triggers.insert(trigger);
                pass.fields
                    .extend(queued.changes.into_iter().map(|change| change.field));
                pass.last_event = queued.index;
            }
        }
    }
}

/// Errors that say the rule no longer fits the data, as opposed to the database failing.
fn rule_could_not_apply(error: &Error) -> bool {
    match error {
        Error::InvalidArgument { .. }
        | Error::NotFound { .. }
        | Error::FailedPrecondition { .. }
        | Error::AlreadyExists { .. }
        | Error::PermissionDenied { .. }
        | Error::EtagMismatch { .. }
        | Error::VersionMismatch { .. }
        | Error::InBatch { .. } => true,
        Error::RequestIdReused { .. }
        | Error::Contended(_)
        | Error::Unavailable(_)
        | Error::Internal(_) => false,
    }
}

async fn fire(
    txn: &WriteTxn,
    rule: &Rule,
    compiled: &CompiledRule,
    ticket_id: i64,
    asked: SideEffects,
) -> Result<(), Error> {
    let origin = Origin {
        actor_id: rule.actor_id(),
        request: None,
        side_effects: asked,
    };
    for action in &compiled.actions {
        apply(txn, action, ticket_id, &origin).await?;
    }
    Ok(())
}

/// Applies one action; returns what it did, in words (TestRule shows them).
async fn apply(
    txn: &WriteTxn,
    action: &Action,
    ticket_id: i64,
    origin: &Origin,
) -> Result<String, Error> {
    match action {
        Action::Change(change) => {
            let current = tickets::lock_ticket(txn, ticket_id).await?;
            let changes = field_changes(txn, change, &current).await?;
            let definitions = properties::definitions_for_write(txn).await?;
            let after =
                tickets::update_loaded(txn, &definitions, current.clone(), "", changes, origin)
                    .await?;
            let changed = crate::domain::event::diff(Some(&current), &after);
            Ok(if changed.is_empty() {
                "no change".to_owned()
            } else {
                describe(&changed)
            })
        }
        Action::AddInternalComment(template) => {
            let ticket = tickets::lock_ticket(txn, ticket_id).await?;
            let pipeline = tickets::existing_pipeline(txn, ticket.pipeline_id).await?;
            let body = template.render(&context(&ticket, &pipeline));
            comments::insert_comment(txn, ticket_id, body.clone(), Visibility::Internal, origin)
                .await?;
            Ok(format!("internal comment: {body:?}"))
        }
        Action::SendWebhook(webhook_id) => {
            let event = txn
                .current_cause()
                .ok_or_else(|| Error::internal("a rule fired without a causing event"))?;
            txn.force_delivery(*webhook_id, event);
            Ok(format!(
                "webhook {webhook_id}: delivers the causing event (unless the write asked for NOTIFY_NONE)"
            ))
        }
    }
}

/// The ticket changes a field action makes to `current`.
async fn field_changes(
    txn: &WriteTxn,
    action: &FieldAction,
    current: &Ticket,
) -> Result<TicketChanges, Error> {
    Ok(match action {
        FieldAction::Set(changes) => (**changes).clone(),
        FieldAction::AddTag(tag) => {
            let mut tags = current.tags.clone();
            if !tags.contains(tag) {
                tags.push(tag.clone());
                tags.sort();
            }
            TicketChanges {
                tags: Some(tags),
                ..Default::default()
            }
        }
        FieldAction::RemoveTag(tag) => TicketChanges {
            tags: Some(
                current
                    .tags
                    .iter()
                    .filter(|held| *held != tag)
                    .cloned()
                    .collect(),
            ),
            ..Default::default()
        },
        FieldAction::AssignByEmail(email) => {
            let agent = agents::agent_by_email(&**txn, email)
                .await?
                .filter(|agent| agent.active)
                .ok_or_else(|| {
                    Error::precondition(
                        "AGENT_NOT_FOUND",
                        format!("no active agent has the address {email:?}"),
                    )
                })?;
            TicketChanges {
                assignee_id: Some(agent.id),
                ..Default::default()
            }
        }
    })
}

fn describe(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(|change| {
            format!(
                "{}: {:?} → {:?}",
                change.field, change.old_value, change.new_value
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn context<'a>(ticket: &'a Ticket, pipeline: &'a Pipeline) -> TicketContext<'a> {
    let stage = pipeline
        .stages
        .iter()
        .find(|stage| stage.id == ticket.stage_id);
    TicketContext {
        ticket,
        pipeline_label: &pipeline.label,
        stage_label: stage.map_or("", |stage| stage.label.as_str()),
        stage_state: stage.map_or(TicketState::Open, |stage| stage.state),
    }
}

/// Enabled rules in running order, compiled. A stored rule that no longer compiles (a newer version's rule
/// after a rollback) is skipped with a warning rather than failing every write.
pub(super) async fn enabled_rules(
    db: &impl ConnectionTrait,
) -> Result<Vec<(Rule, CompiledRule)>, Error> {
    let rows = rule::Entity::find()
        .filter(rule::Column::Enabled.eq(true))
        .order_by_asc(rule::Column::Position)
        .order_by_asc(rule::Column::Id)
        .all(db)
        .await?;
    let mut rules = Vec::with_capacity(rows.len());
    for row in rows {
        let rule = rule_to_domain(row)?;
        match compile("rule", &rule.definition) {
            Ok((compiled, _)) => rules.push((rule, compiled)),
            Err(error) => {
                tracing::warn!(rule_id = rule.id, %error, "stored rule does not compile; skipped")
            }
        }
    }
    Ok(rules)
}

/// Custom properties a rule names must be defined.
async fn check_properties(txn: &WriteTxn, definition: &RuleDefinition) -> Result<(), Error> {
    let (_, names) = compile("rule", definition)?;
    if names.is_empty() {
        return Ok(());
    }
    let defined = properties::load_definitions(&**txn).await?;
    match names.iter().find(|name| !defined.contains_key(*name)) {
        Some(name) => Err(Error::invalid(
            "rule",
            format!("property {name:?} is not defined (PropertyService)"),
        )),
        None => Ok(()),
    }
}

async fn next_position(db: &impl ConnectionTrait) -> Result<i32, Error> {
    let last: Option<i32> = rule::Entity::find()
        .select_only()
        .column_as(rule::Column::Position.max(), "last")
        .into_tuple::<Option<i32>>()
        .one(db)
        .await?
        .flatten();
    Ok(last.map_or(0, |last| last.saturating_add(1)))
}

fn rule_to_domain(row: rule::Model) -> Result<Rule, Error> {
    Ok(Rule {
        id: row.id,
        name: row.name,
        enabled: row.enabled,
        position: row.position,
        definition: from_json(row.definition)?,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
