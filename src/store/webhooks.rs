//! Webhooks and their deliveries: the subscriptions, the durable queue written with the events it delivers,
//! and what the delivery workers claim from it and record in it.
//!
//! The database is the queue. A delivery row is inserted in the transaction of the write whose event it
//! delivers, so an acknowledged write is never lost to a crash. On PostgreSQL each worker claims one due row
//! with `FOR UPDATE SKIP LOCKED` and keeps that transaction open during the HTTP attempt: the row lock is the
//! lease, and a replica that dies loses it with its connection, so another replica takes the row at once. On
//! SQLite (one process) the one worker tracks what it has in flight in memory instead, and records each attempt
//! in a write transaction of its own.
//!
//! Lock order, to keep away from deadlocks: deliveries before their webhook, everywhere (the workers hold a
//! delivery and may then update its webhook; admin writes that touch both do the deliveries first).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Query},
};

use super::{
    Store, WriteTxn,
    config::Config,
    entities::{property_definition, ticket_event, webhook, webhook_attempt, webhook_delivery},
    from_json, history,
    outbox::AppendedEvent,
    to_json,
};
use crate::domain::{
    Error, Origin,
    card::TicketContext,
    condition::Condition,
    etag,
    event::{Notify, TicketEvent},
    now,
    page::Page,
    webhook::{
        Attempt, Delivery, DeliveryFilter, DeliveryStatus, EventType, NewWebhook, Webhook,
        WebhookChanges, new_secret, subscribes,
    },
};

const WEBHOOK: &str = Webhook::RESOURCE;
const DELIVERY: &str = "webhook delivery";
/// The first KiB of an answer is kept with each attempt.
pub const RESPONSE_KEPT_BYTES: usize = 1024;

/// Enqueues a delivery of each appended event to every enabled webhook that subscribes to it, and each
/// `forced` (webhook id, event id) pair a rule asked for.
pub(super) async fn enqueue(
    txn: &WriteTxn,
    events: &[AppendedEvent<'_>],
    forced: &[(i64, i64)],
) -> Result<(), Error> {
    // Writes that notify nobody (NOTIFY_NONE, tickets created closed) reach no webhook, not even a forced one.
    let deliverable: Vec<(&AppendedEvent, EventType)> = events
        .iter()
        .filter(|event| event.side_effects.notify == Notify::All)
        .filter_map(|event| Some((event, EventType::of(event.kind)?)))
        .collect();
    if deliverable.is_empty() {
        return Ok(());
    }
    let config = txn.config().await?;
    if config.webhooks.is_empty() {
        return Ok(());
    }
    let forced: BTreeSet<(i64, i64)> = forced.iter().copied().collect();
    let now = now();
    let trace_parent = crate::telemetry::current_traceparent();
    let mut rows = Vec::new();
    for (event, event_type) in deliverable {
        for subscriber in &config.webhooks {
            let webhook_id = &subscriber.id;
            let wanted = forced.contains(&(*webhook_id, event.event_id))
                || (subscribes(&subscriber.event_types, event_type, event.detail)
                    && match &subscriber.condition {
                        Some(condition) => matches(&config, condition, event.ticket),
                        None => false,
                    });
            if wanted {
                rows.push(webhook_delivery::ActiveModel {
                    id: NotSet,
                    webhook_id: Set(*webhook_id),
                    event_id: Set(event.event_id),
                    ticket_id: Set(event.ticket_id),
                    event_type: Set(event_type.as_str().to_owned()),
                    status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                    next_attempt_time: Set(now),
                    attempt_count: Set(0),
                    trace_parent: Set(trace_parent.clone()),
                    create_time: Set(now),
                    update_time: Set(now),
                });
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    webhook_delivery::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([
            webhook_delivery::Column::WebhookId,
            webhook_delivery::Column::EventId,
        ])
        .exec_without_returning(&**txn)
        .await?;
    // All of the transaction's events commit together: the newest one says when all are claimable.
    txn.deliveries_enqueued(events.iter().map(|event| event.event_id).max().unwrap_or(0));
    Ok(())
}

/// Whether a webhook's condition matches the ticket an event is about, with its pipeline and stage as the
/// write's configuration has them.
fn matches(
    config: &Config,
    condition: &Condition,
    ticket: Option<&crate::domain::ticket::Ticket>,
) -> bool {
    if condition.as_str().is_empty() {
        return true;
    }
    let Some(ticket) = ticket else {
        return false;
    };
    let pipeline = config.pipelines.get(&ticket.pipeline_id);
    let stage = pipeline.and_then(|pipeline| {
        pipeline
            .stages
            .iter()
            .find(|stage| stage.id == ticket.stage_id)
    });
    let (Some(pipeline), Some(stage)) = (pipeline, stage) else {
        return false;
    };
    condition.matches(&TicketContext {
        ticket,
        pipeline_label: &pipeline.label,
        stage_label: &stage.label,
        stage_state: stage.state,
    })
}

/// A due delivery a worker holds, with what it needs to send it.
pub struct ClaimedDelivery {
    pub id: i64,
    pub event_id: i64,
    pub ticket_id: i64,
    pub event_type: String,
    /// Attempts made before this one.
    pub attempt_count: i32,
    pub trace_parent: String,
    pub webhook: Webhook,
    pub failing_since: Option<DateTime<Utc>>,
    /// `None` when the event row is gone (it never is: history is append-only).
    pub event: Option<TicketEvent>,
    /// PostgreSQL: the transaction holding the row lock, in which the attempt is recorded.
    txn: Option<DatabaseTransaction>,
}

/// What an attempt led to, as the worker decided it.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: Attempt,
    pub status: DeliveryStatus,
    /// When the next attempt is due (PENDING only).
    pub next_attempt_time: DateTime<Utc>,
    /// Whether the attempt succeeded: clears or starts the webhook's run of failures.
    pub succeeded: bool,
    /// Disables the webhook, for this reason.
    pub disable: Option<String>,
}

impl Store {
    /// Adds a webhook, enabled, with a new secret; `condition` is `new.condition` as checked.
    pub async fn create_webhook(
        &self,
        new: NewWebhook,
        condition: &Condition,
        origin: &Origin,
    ) -> Result<Webhook, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            check_properties(txn, condition).await?;
            let now = now();
            let row = webhook::Entity::insert(webhook::ActiveModel {
                id: NotSet,
                url: Set(new.url.clone()),
                event_types: Set(to_json(&new.event_types)?),
                condition: Set(new.condition.clone()),
                description: Set(new.description.clone()),
                enabled: Set(true),
                disabled_reason: Set(String::new()),
                secret: Set(new_secret()?),
                previous_secret: Set(None),
                previous_secret_expire_time: Set(None),
                failing_since: Set(None),
                version: Set(1),
                create_time: Set(now),
                update_time: Set(now),
            })
            .exec_with_returning(&**txn)
            .await?;
            webhook_to_domain(row)
        })
        .await
    }

    /// Reads one webhook (with its full secret: the API decides what to show).
    pub async fn get_webhook(&self, id: i64) -> Result<Webhook, Error> {
        webhook::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(webhook_to_domain)
            .transpose()?
            .ok_or_else(|| Error::not_found(WEBHOOK, id))
    }

    /// One page of webhooks by id, strictly after `after_id`.
    pub async fn list_webhooks(
        &self,
        page_size: u64,
        after_id: Option<i64>,
    ) -> Result<Page<Webhook, i64>, Error> {
        let mut select = webhook::Entity::find();
        if let Some(after) = after_id {
            select = select.filter(webhook::Column::Id.gt(after));
        }
        let hooks = select
            .order_by_asc(webhook::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(webhook_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(hooks, page_size, |hook| hook.id))
    }

    /// Applies changes when `sent_etag` is empty or current. Disabling fails the pending deliveries;
    /// re-enabling clears the reason the server gave and its run of failures.
    pub async fn update_webhook(
        &self,
        id: i64,
        sent_etag: &str,
        changes: WebhookChanges,
        condition: Option<&Condition>,
        origin: &Origin,
    ) -> Result<Webhook, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            if let Some(condition) = condition {
                check_properties(txn, condition).await?;
            }
            if changes.enabled == Some(false) {
                // Deliveries first (see the module doc); an etag mismatch below rolls this back.
                fail_pending(&**txn, id).await?;
            }
            let row = lock_webhook(txn, id).await?;
            etag::check(WEBHOOK, id, row.version, sent_etag)?;
            let mut update = webhook::ActiveModel {
                id: Set(id),
                version: Set(row.version + 1),
                update_time: Set(now()),
                ..Default::default()
            };
            if let Some(url) = &changes.url {
                update.url = Set(url.clone());
            }
            if let Some(event_types) = &changes.event_types {
                update.event_types = Set(to_json(event_types)?);
            }
            if let Some(condition) = &changes.condition {
                update.condition = Set(condition.clone());
            }
            if let Some(description) = &changes.description {
                update.description = Set(description.clone());
            }
            if let Some(enabled) = changes.enabled {
                update.enabled = Set(enabled);
                if enabled && !row.enabled {
                    update.disabled_reason = Set(String::new());
                    update.failing_since = Set(None);
                }
            }
            let updated = webhook::Entity::update(update).exec(&**txn).await?;
            webhook_to_domain(updated)
        })
        .await
    }

    /// Deletes a webhook with its deliveries and their attempts.
    pub async fn delete_webhook(&self, id: i64, sent_etag: &str) -> Result<(), Error> {
        self.write_config(None, async |txn| {
            // Deliveries first (see the module doc): this waits for a worker's attempt in progress.
            webhook_delivery::Entity::delete_many()
                .filter(webhook_delivery::Column::WebhookId.eq(id))
                .exec(&**txn)
                .await?;
            let row = lock_webhook(txn, id).await?;
            etag::check(WEBHOOK, id, row.version, sent_etag)?;
            webhook::Entity::delete_by_id(id).exec(&**txn).await?;
            Ok(())
        })
        .await
    }

    /// Gives a webhook a new secret; the current one becomes the previous one, which keeps signing for
    /// `previous_lifetime`.
    pub async fn rotate_webhook_secret(
        &self,
        id: i64,
        previous_lifetime: std::time::Duration,
        origin: &Origin,
    ) -> Result<Webhook, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = lock_webhook(txn, id).await?;
            let now = now();
            let expiry =
                now + chrono::Duration::from_std(previous_lifetime).map_err(Error::internal)?;
            let updated = webhook::Entity::update(webhook::ActiveModel {
                id: Set(id),
                secret: Set(new_secret()?),
                previous_secret: Set(Some(row.secret)),
                previous_secret_expire_time: Set(Some(expiry)),
                version: Set(row.version + 1),
                update_time: Set(now),
                ..Default::default()
            })
            .exec(&**txn)
            .await?;
            webhook_to_domain(updated)
        })
        .await
    }

    /// One page of a webhook's deliveries, newest first, strictly before delivery `before_id`.
    pub async fn list_webhook_deliveries(
        &self,
        webhook_id: i64,
        filter: DeliveryFilter,
        page_size: u64,
        before_id: Option<i64>,
    ) -> Result<Page<Delivery, i64>, Error> {
        if webhook::Entity::find_by_id(webhook_id)
            .one(&self.db)
            .await?
            .is_none()
        {
            return Err(Error::not_found(WEBHOOK, webhook_id));
        }
        let mut select = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
        if let Some(ticket_id) = filter.ticket_id {
            select = select.filter(webhook_delivery::Column::TicketId.eq(ticket_id));
        }
        if let Some(status) = filter.status {
            select = select.filter(webhook_delivery::Column::Status.eq(status.as_str()));
        }
        if let Some(before) = before_id {
            select = select.filter(webhook_delivery::Column::Id.lt(before));
        }
        let rows = select
            .order_by_desc(webhook_delivery::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let deliveries = with_attempts(&self.db, rows).await?;
        Ok(Page::from_overfetch(deliveries, page_size, |delivery| {
            delivery.id
        }))
    }

    /// Makes a delivery PENDING and due now, whatever its status, and wakes the workers.
    pub async fn redeliver_webhook(&self, delivery_id: i64) -> Result<Delivery, Error> {
        let delivery = self
            .write(None, async |txn| {
                let row = webhook_delivery::Entity::find_by_id(delivery_id)
                    .lock_exclusive()
                    .one(&**txn)
                    .await?
                    .ok_or_else(|| Error::not_found(DELIVERY, delivery_id))?;
                let now = now();
                let updated = webhook_delivery::Entity::update(webhook_delivery::ActiveModel {
                    id: Set(row.id),
                    status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                    next_attempt_time: Set(now),
                    update_time: Set(now),
                    ..Default::default()
                })
                .exec(&**txn)
                .await?;
                let mut deliveries = with_attempts(&**txn, vec![updated]).await?;
                deliveries
                    .pop()
                    .ok_or_else(|| Error::internal("a delivery vanished while redelivered"))
            })
            .await?;
        self.delivery_signal.notify_waiters();
        Ok(delivery)
    }

    /// The signal raised after a commit that enqueued deliveries (or made one due again) in this process.
    pub fn delivery_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        std::sync::Arc::clone(&self.delivery_signal)
    }

    /// Claims the next due delivery, or `None`: the oldest-due PENDING delivery of an enabled webhook with no
    /// earlier PENDING delivery of the same webhook and ticket (so one ticket's events reach one webhook in
    /// order), of an event at or below the outbox horizon. On PostgreSQL the row stays locked until [`Store::finish_delivery`]; on SQLite `in_flight`
    /// lists what this process is already sending.
    pub async fn claim_delivery(
        &self,
        in_flight: &[i64],
    ) -> Result<Option<ClaimedDelivery>, Error> {
        let earlier = Alias::new("earlier");
        let current = webhook_delivery::Entity;
        let blocked = Query::select()
            .expr(Expr::val(1))
            .from_as(webhook_delivery::Entity, earlier.clone())
            .and_where(
                Expr::col((earlier.clone(), webhook_delivery::Column::WebhookId))
                    .equals((current, webhook_delivery::Column::WebhookId)),
            )
            .and_where(
                Expr::col((earlier.clone(), webhook_delivery::Column::TicketId))
                    .equals((current, webhook_delivery::Column::TicketId)),
            )
            .and_where(
                Expr::col((earlier.clone(), webhook_delivery::Column::Status))
                    .eq(DeliveryStatus::Pending.as_str()),
            )
            .and_where(
                Expr::col((earlier.clone(), webhook_delivery::Column::EventId))
                    .lt(Expr::col((current, webhook_delivery::Column::EventId))),
            )
            .to_owned();
        let enabled = Query::select()
            .column(webhook::Column::Id)
            .from(webhook::Entity)
            .and_where(Expr::col(webhook::Column::Enabled).eq(true))
            .to_owned();
        let mut select = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .filter(webhook_delivery::Column::NextAttemptTime.lte(now()))
            // Only events the tailer has passed: every earlier event of the ticket is visible by then, with
            // its deliveries, so `blocked` sees them (src/store/outbox.rs).
            .filter(webhook_delivery::Column::EventId.lte(self.horizon.events()))
            .filter(webhook_delivery::Column::WebhookId.in_subquery(enabled))
            .filter(Expr::exists(blocked).not())
            .order_by_asc(webhook_delivery::Column::NextAttemptTime)
            .order_by_asc(webhook_delivery::Column::Id)
            .limit(1);
        if !in_flight.is_empty() {
            select =
                select.filter(webhook_delivery::Column::Id.is_not_in(in_flight.iter().copied()));
        }
        let (row, txn) = if self.backend() == DbBackend::Postgres {
            let txn = self.db.begin().await?;
            let row = select
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .one(&txn)
                .await?;
            match row {
                Some(row) => (row, Some(txn)),
                None => return Ok(None),
            }
        } else {
            match select.one(&self.db).await? {
                Some(row) => (row, None),
                None => return Ok(None),
            }
        };
        let hook = match &txn {
            Some(txn) => webhook::Entity::find_by_id(row.webhook_id).one(txn).await?,
            None => {
                webhook::Entity::find_by_id(row.webhook_id)
                    .one(&self.db)
                    .await?
            }
        }
        .ok_or_else(|| Error::internal(format!("webhook {} vanished", row.webhook_id)))?;
        let event = match &txn {
            Some(txn) => {
                ticket_event::Entity::find_by_id(row.event_id)
                    .one(txn)
                    .await?
            }
            None => {
                ticket_event::Entity::find_by_id(row.event_id)
                    .one(&self.db)
                    .await?
            }
        }
        .map(history::event_to_domain)
        .transpose()?;
        let failing_since = hook.failing_since;
        Ok(Some(ClaimedDelivery {
            id: row.id,
            event_id: row.event_id,
            ticket_id: row.ticket_id,
            event_type: row.event_type,
            attempt_count: row.attempt_count,
            trace_parent: row.trace_parent,
            webhook: webhook_to_domain(hook)?,
            failing_since,
            event,
            txn,
        }))
    }

    /// Records an attempt and its outcome in one transaction (on PostgreSQL, the claim's).
    pub async fn finish_delivery(
        &self,
        mut claimed: ClaimedDelivery,
        outcome: AttemptOutcome,
    ) -> Result<(), Error> {
        match claimed.txn.take() {
            Some(txn) => {
                record(&txn, &claimed, &outcome).await?;
                txn.commit().await?;
                if outcome.disable.is_some() {
                    // Other replicas learn of it from the generation the trigger moved.
                    self.config.invalidate();
                }
            }
            None => {
                let txn = self.begin_write().await?;
                if outcome.disable.is_some() {
                    txn.config_changed();
                }
                record(&*txn, &claimed, &outcome).await?;
                txn.commit().await?;
            }
        }
        if outcome.disable.is_some() {
            // Outside the attempt's transaction, holding no webhook lock, so waiting on other workers'
            // deliveries cannot close a cycle (see the module doc).
            fail_pending(&self.db, claimed.webhook.id).await?;
        }
        Ok(())
    }

    /// Deliveries waiting to go out, for the queue-depth gauge.
    pub async fn pending_delivery_count(&self) -> Result<u64, Error> {
        Ok(webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .count(&self.db)
            .await?)
    }

    /// Webhooks that are disabled, for the gauge.
    pub async fn disabled_webhook_count(&self) -> Result<u64, Error> {
        Ok(webhook::Entity::find()
            .filter(webhook::Column::Enabled.eq(false))
            .count(&self.db)
            .await?)
    }
}

async fn record(
    db: &impl ConnectionTrait,
    claimed: &ClaimedDelivery,
    outcome: &AttemptOutcome,
) -> Result<(), Error> {
    let attempt = &outcome.attempt;
    webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
        id: NotSet,
        delivery_id: Set(claimed.id),
        attempt_time: Set(attempt.attempt_time),
        http_status: Set(attempt.http_status),
        duration_micros: Set(i64::try_from(attempt.duration.as_micros()).unwrap_or(i64::MAX)),
        response: Set(attempt.response.clone()),
    })
    .exec_without_returning(db)
    .await?;
    let now = now();
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(outcome.status.as_str()),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptTime,
            Expr::value(outcome.next_attempt_time),
        )
        .col_expr(
            webhook_delivery::Column::AttemptCount,
            Expr::col(webhook_delivery::Column::AttemptCount).add(1),
        )
        .col_expr(webhook_delivery::Column::UpdateTime, Expr::value(now))
        .filter(webhook_delivery::Column::Id.eq(claimed.id))
        .exec(db)
        .await?;
    // The webhook row is written only when something changes, so workers sending to one webhook rarely
    // queue on its lock.
    let mut update = webhook::Entity::update_many()
        .filter(webhook::Column::Id.eq(claimed.webhook.id))
        .col_expr(webhook::Column::UpdateTime, Expr::value(now));
    let mut changed = false;
    if outcome.succeeded && claimed.failing_since.is_some() {
        update = update.col_expr(
            webhook::Column::FailingSince,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
        changed = true;
    }
    if !outcome.succeeded && claimed.failing_since.is_none() {
        update = update
            .col_expr(
                webhook::Column::FailingSince,
                Expr::value(attempt.attempt_time),
            )
            .filter(webhook::Column::FailingSince.is_null());
        changed = true;
    }
    if let Some(reason) = &outcome.disable {
        update = update
            .col_expr(webhook::Column::Enabled, Expr::value(false))
            .col_expr(webhook::Column::DisabledReason, Expr::value(reason.clone()))
            .col_expr(
                webhook::Column::Version,
                Expr::col(webhook::Column::Version).add(1),
            );
        changed = true;
    }
    if changed {
        update.exec(db).await?;
    }
    Ok(())
}

/// Abandons a webhook's pending deliveries (it was disabled).
async fn fail_pending(db: &impl ConnectionTrait, webhook_id: i64) -> Result<(), Error> {
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(webhook_delivery::Column::UpdateTime, Expr::value(now()))
        .filter(webhook_delivery::Column::WebhookId.eq(webhook_id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Refuses a condition naming a property no definition has (archived ones still name stored values).
async fn check_properties(txn: &WriteTxn, condition: &Condition) -> Result<(), Error> {
    let names = condition.property_names();
    if names.is_empty() {
        return Ok(());
    }
    let known: BTreeSet<String> = property_definition::Entity::find()
        .filter(property_definition::Column::Name.is_in(names.iter().cloned()))
        .all(&**txn)
        .await?
        .into_iter()
        .map(|definition| definition.name)
        .collect();
    match names.iter().find(|name| !known.contains(*name)) {
        Some(unknown) => Err(Error::invalid(
            "condition",
            format!("properties.{unknown} names no property definition"),
        )),
        None => Ok(()),
    }
}

/// Reads a webhook for change; on PostgreSQL the row lock queues concurrent writers to it.
async fn lock_webhook(txn: &WriteTxn, id: i64) -> Result<webhook::Model, Error> {
    webhook::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(WEBHOOK, id))
}

/// Deliveries with their attempts, oldest attempt first, in the order given.
async fn with_attempts(
    db: &impl ConnectionTrait,
    rows: Vec<webhook_delivery::Model>,
) -> Result<Vec<Delivery>, Error> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut attempts: BTreeMap<i64, Vec<Attempt>> = BTreeMap::new();
    if !ids.is_empty() {
        for attempt in webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.is_in(ids))
            .order_by_asc(webhook_attempt::Column::Id)
            .all(db)
            .await?
        {
            attempts
                .entry(attempt.delivery_id)
                .or_default()
                .push(Attempt {
                    attempt_time: attempt.attempt_time,
                    http_status: attempt.http_status,
                    duration: std::time::Duration::from_micros(
                        u64::try_from(attempt.duration_micros).unwrap_or_default(),
                    ),
                    response: attempt.response,
                });
        }
    }
    rows.into_iter()
        .map(|row| {
            let status = DeliveryStatus::from_stored(&row.status).ok_or_else(|| {
                Error::internal(format!(
                    "delivery {} has unknown status {:?}",
                    row.id, row.status
                ))
            })?;
            Ok(Delivery {
                attempts: attempts.remove(&row.id).unwrap_or_default(),
                id: row.id,
                webhook_id: row.webhook_id,
                event_id: row.event_id,
                ticket_id: row.ticket_id,
                event_type: row.event_type,
                status,
                next_attempt_time: row.next_attempt_time,
                create_time: row.create_time,
            })
        })
        .collect()
}

fn webhook_to_domain(row: webhook::Model) -> Result<Webhook, Error> {
    Ok(Webhook {
        etag: Webhook::etag_of(row.id, row.version),
        id: row.id,
        url: row.url,
        event_types: from_json(row.event_types)?,
        condition: row.condition,
        description: row.description,
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        secret: row.secret,
        previous_secret: row.previous_secret,
        previous_secret_expire_time: row.previous_secret_expire_time,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
