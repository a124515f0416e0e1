//! Ticket reads and writes, single and in batches.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
    sea_query::{Expr, ExprTrait, Order},
};

use super::{
    Store, WriteTxn, access, associations,
    entities::{stage, ticket, ticket_property_value},
    followers, from_json,
    history::record_event,
    outbox::Written,
    properties, search, to_json,
};
use crate::domain::{
    Error, Origin,
    access::TicketScope,
    commands::{HistoricalTimes, NewTicket, TicketUpdate},
    etag,
    event::{FieldChange, NewEvent, time_text},
    field::TicketField,
    now,
    page::Page,
    pipeline::{DEFAULT_PIPELINE_ID, Pipeline, TicketState},
    property::{
        PropertyDefinition, TypedValue, apply_required_defaults, normalize_changes,
        normalize_properties,
    },
    queries::{TicketListQuery, TicketOrderField},
    search::{RawFilter, compile},
    ticket::{Priority, Ticket, TicketChanges, close_time_after},
};

const RESOURCE: &str = Ticket::RESOURCE;
impl Store {
    /// Creates a ticket (and its links) in its pipeline's requested or first stage.
    pub async fn create_ticket(&self, ticket: NewTicket, origin: &Origin) -> Result<Ticket, Error> {
        self.write_tickets(origin.request.as_ref(), async |txn| {
            let definitions = properties::definitions_for_write(txn).await?;
            insert_ticket(txn, &definitions, ticket, origin).await
        })
        .await
    }

    /// Creates every ticket or none; an error names the failing item.
    pub async fn batch_create_tickets(
        &self,
        tickets: Vec<NewTicket>,
        origin: &Origin,
    ) -> Result<Vec<Ticket>, Error> {
        self.write_tickets(origin.request.as_ref(), async |txn| {
            let definitions = properties::definitions_for_write(txn).await?;
            let mut created = Vec::with_capacity(tickets.len());
            for (index, ticket) in tickets.into_iter().enumerate() {
                let ticket = insert_ticket(txn, &definitions, ticket, origin)
                    .await
                    .map_err(|error| error.in_batch("requests", index))?;
                created.push(ticket);
            }
            Ok(created)
        })
        .await
    }

    /// Reads one ticket, archived or not; one a customer may not see is NOT_FOUND.
    pub async fn get_ticket(&self, id: i64, scope: Option<&TicketScope>) -> Result<Ticket, Error> {
        let Some(scope) = scope else {
            return fetch::ticket(&self.db, id)
                .await?
                .ok_or_else(|| Error::not_found(RESOURCE, id));
        };
        let select = ticket::Entity::find_by_id(id).filter(access::scope_condition(scope));
        joined_with_properties(&self.db, select)
            .await?
            .pop()
            .ok_or_else(|| Error::not_found(RESOURCE, id))
    }

    /// Reads several tickets in the order asked; any unknown id fails the call.
    pub async fn batch_get_tickets(
        &self,
        ids: &[i64],
        scope: Option<&TicketScope>,
    ) -> Result<Vec<Ticket>, Error> {
        let mut select =
            ticket::Entity::find().filter(ticket::Column::Id.is_in(ids.iter().copied()));
        if let Some(scope) = scope {
            select = select.filter(access::scope_condition(scope));
        }
        let by_id: HashMap<i64, Ticket> = joined_with_properties(&self.db, select)
            .await?
            .into_iter()
            .map(|ticket| (ticket.id, ticket))
            .collect();
        ids.iter()
            .enumerate()
            .map(|(index, id)| {
                by_id
                    .get(id)
                    .cloned()
                    .ok_or_else(|| Error::not_found(RESOURCE, id).in_batch("ids", index))
            })
            .collect()
    }

    /// Checks a search's filters against the property definitions, then lists what matches.
    pub async fn search_tickets(
        &self,
        filters: Vec<Vec<RawFilter>>,
        mut query: TicketListQuery,
    ) -> Result<Page<Ticket>, Error> {
        let config = self.config_for_read().await?;
        query.filter_groups = match compile(filters.clone(), &config.definitions) {
            Ok(compiled) => compiled,
            // The cache may not know a property defined on another replica a moment ago: the database decides.
            Err(_) => compile(filters, &self.config_fresh().await?.definitions)?,
        };
        self.list_tickets(&query).await
    }

    /// One page of tickets in the query's order, strictly after its cursor, matching its search.
    pub async fn list_tickets(&self, query: &TicketListQuery) -> Result<Page<Ticket>, Error> {
        let column = match query.order.field {
            TicketOrderField::Id => None,
            TicketOrderField::CreateTime => Some(ticket::Column::CreateTime),
            TicketOrderField::UpdateTime => Some(ticket::Column::UpdateTime),
        };
        let direction = if query.order.descending {
            Order::Desc
        } else {
            Order::Asc
        };
        let mut select = ticket::Entity::find().filter(search::condition(
            self.backend(),
            &query.filter_groups,
            &query.words,
        ));
        if !query.show_archived {
            select = select.filter(ticket::Column::ArchiveTime.is_null());
        }
        if let Some(scope) = &query.scope {
            select = select.filter(access::scope_condition(scope));
        }
        if let Some(cursor) = query.after {
            let after_id = if query.order.descending {
                ticket::Column::Id.lt(cursor.id)
            } else {
                ticket::Column::Id.gt(cursor.id)
            };
            let condition = match column {
                None => Condition::all().add(after_id),
                Some(column) => {
                    let key = micros_to_time(cursor.key)?;
                    let beyond = if query.order.descending {
                        column.lt(key)
                    } else {
                        column.gt(key)
                    };
                    Condition::any()
                        .add(beyond)
                        .add(Condition::all().add(column.eq(key)).add(after_id))
                }
            };
            select = select.filter(condition);
        }
        if let Some(column) = column {
            select = select.order_by(column, direction.clone());
        }
        let rows = select
            .order_by(ticket::Column::Id, direction)
            .limit(query.page_size + 1)
            .all(&self.db)
            .await?;
        let tickets = with_properties(&self.db, rows).await?;
        Ok(Page::from_overfetch(tickets, query.page_size, |ticket| {
            query.order.cursor_of(ticket)
        }))
    }

    /// Applies `changes` if `sent_etag` is empty or current; moving stages opens or closes the ticket.
    pub async fn update_ticket(
        &self,
        id: i64,
        sent_etag: &str,
        changes: TicketChanges,
        scope: Option<&TicketScope>,
        origin: &Origin,
    ) -> Result<Ticket, Error> {
        self.write_tickets(origin.request.as_ref(), async |txn| {
            let definitions = properties::definitions_for_write(txn).await?;
            update_locked(txn, &definitions, id, sent_etag, changes, scope, origin).await
        })
        .await
    }

    /// Applies every update or none; an error names the failing item.
    pub async fn batch_update_tickets(
        &self,
        updates: Vec<TicketUpdate>,
        scope: Option<&TicketScope>,
        origin: &Origin,
    ) -> Result<Vec<Ticket>, Error> {
        check_distinct(updates.iter().map(|update| update.id), "ticket.id")?;
        self.write_tickets(origin.request.as_ref(), async |txn| {
            let definitions = properties::definitions_for_write(txn).await?;
            let mut updated = Vec::with_capacity(updates.len());
            for (index, update) in updates.into_iter().enumerate() {
                let ticket = update_locked(
                    txn,
                    &definitions,
                    update.id,
                    &update.etag,
                    update.changes,
                    scope,
                    origin,
                )
                .await
                .map_err(|error| error.within("ticket").in_batch("requests", index))?;
                updated.push(ticket);
            }
            Ok(updated)
        })
        .await
    }

    /// Moves a ticket to the trash.
    pub async fn archive_ticket(
        &self,
        id: i64,
        sent_etag: &str,
        origin: &Origin,
    ) -> Result<Ticket, Error> {
        self.write_tickets(origin.request.as_ref(), async |txn| {
            archive_locked(txn, id, sent_etag, origin).await
        })
        .await
    }

    /// Archives every ticket or none; an error names the failing item.
    pub async fn batch_archive_tickets(
        &self,
        items: Vec<(i64, String)>,
        origin: &Origin,
    ) -> Result<Vec<Ticket>, Error> {
        check_distinct(items.iter().map(|(id, _)| *id), "id")?;
        self.write_tickets(origin.request.as_ref(), async |txn| {
            let mut archived = Vec::with_capacity(items.len());
            for (index, (id, sent_etag)) in items.iter().enumerate() {
                let ticket = archive_locked(txn, *id, sent_etag, origin)
                    .await
                    .map_err(|error| error.in_batch("requests", index))?;
                archived.push(ticket);
            }
            Ok(archived)
        })
        .await
    }

    /// Takes a ticket out of the trash.
    pub async fn restore_ticket(&self, id: i64, origin: &Origin) -> Result<Ticket, Error> {
        self.write_tickets(origin.request.as_ref(), async |txn| {
            let mut ticket = lock_ticket(txn, id).await?;
            if !ticket.archived() {
                return Err(Error::precondition(
                    "TICKET_NOT_ARCHIVED",
                    format!("ticket {id} is not archived"),
                ));
            }
            let before = ticket.archive_time.take();
            let saved = save(txn, ticket).await?;
            record_event(
                txn,
                origin,
                NewEvent::plain(
                    id,
                    crate::domain::event::EventKind::Restored,
                    vec![archive_change(before, None)],
                    None,
                ),
            )
            .await?;
            Ok(saved)
        })
        .await
    }
}

/// Refuses a batch that names one ticket twice: its items would depend on each other's order.
fn check_distinct(ids: impl Iterator<Item = i64>, field: &str) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for (index, id) in ids.enumerate() {
        if !seen.insert(id) {
            return Err(Error::invalid(
                format!("requests[{index}].{field}"),
                format!("ticket {id} appears earlier in the batch"),
            ));
        }
    }
    Ok(())
}

async fn insert_ticket(
    txn: &WriteTxn,
    definitions: &BTreeMap<String, PropertyDefinition>,
    new: NewTicket,
    origin: &Origin,
) -> Result<Ticket, Error> {
    insert_ticket_at(txn, definitions, new, origin, &HistoricalTimes::default()).await
}

/// Inserts a ticket with the times it brings (an imported ticket's history, a filed chat's end); errors name
/// `ticket.<field>`.
pub(super) async fn insert_ticket_at(
    txn: &WriteTxn,
    definitions: &BTreeMap<String, PropertyDefinition>,
    new: NewTicket,
    origin: &Origin,
    times: &HistoricalTimes,
) -> Result<Ticket, Error> {
    let NewTicket {
        draft,
        associations: links,
    } = new;
    let ticket_field = |error: Error| error.within("ticket");
    let mut values = normalize_properties(definitions, draft.properties).map_err(ticket_field)?;
    apply_required_defaults(definitions, &mut values).map_err(ticket_field)?;
    let pipeline_id = draft.pipeline_id.unwrap_or(DEFAULT_PIPELINE_ID);
    let pipeline = existing_pipeline(txn, pipeline_id)
        .await
        .map_err(ticket_field)?;
    let stage = pipeline.place(draft.stage_id).map_err(ticket_field)?;
    // The unique index alone decides a taken external id (`duplicate`): a look-up first would cost every
    // create, and the importer, which looks it up anyway, a second query, and races would still need the index.
    let external_id = draft.external_id;
    let now = now();
    let create_time = times.create_time.unwrap_or(now);
    let update_time = Ord::max(times.update_time.unwrap_or(now), create_time);
    let close_time = close_time_at(stage.state, times, update_time).map_err(ticket_field)?;
    let row = ticket::Entity::insert(ticket::ActiveModel {
        id: NotSet,
        subject: Set(draft.subject),
        content: Set(draft.content),
        pipeline_id: Set(pipeline.id),
        stage_id: Set(stage.id),
        priority: Set(draft.priority.map(|p| p.as_str().to_owned())),
        requester_id: Set(draft.requester_id),
        assignee_id: Set(draft.assignee_id),
        organization_id: Set(draft.organization_id),
        ticket_type: Set(draft.ticket_type),
        tags: Set(to_json(&draft.tags)?),
        project_id: Set(draft.project_id),
        external_id: Set(stored_external_id(&external_id)),
        create_time: Set(create_time),
        update_time: Set(update_time),
        close_time: Set(close_time),
        archive_time: Set(None),
        version: Set(1),
    })
    .exec_with_returning(&**txn)
    .await
    .map_err(|error| duplicate(error, &external_id))?;
    let properties = values
        .iter()
        .map(|(name, value)| (name.clone(), value.text.clone()))
        .collect();
    let ticket = to_domain(row, properties)?;
    properties::write_values(
        txn,
        ticket.id,
        values
            .into_iter()
            .map(|(name, value)| (name, Some(value)))
            .collect(),
    )
    .await?;
    if !ticket.requester_id.is_empty() {
        followers::add_follower(txn, ticket.id, &ticket.requester_id).await?;
    }
    txn.remember_written(&ticket, Written::Created(stage.state));
    record_event(txn, origin, NewEvent::created(&ticket)).await?;
    for (index, link) in links.into_iter().enumerate() {
        associations::link(txn, ticket.id, link, origin)
            .await
            .map_err(|error| error.within(&format!("associations[{index}]")))?;
    }
    Ok(ticket)
}

pub(super) async fn update_locked(
    txn: &WriteTxn,
    definitions: &BTreeMap<String, PropertyDefinition>,
    id: i64,
    sent_etag: &str,
    changes: TicketChanges,
    scope: Option<&TicketScope>,
    origin: &Origin,
) -> Result<Ticket, Error> {
    // Checked inside the transaction, so a ticket that left the customer's view a moment ago stays out of reach.
    // Staff see every ticket, and the lock below finds a missing one: no statement of its own for them.
    if scope.is_some() {
        access::require_visible(&**txn, scope, id).await?;
    }
    let before = lock_ticket(txn, id).await?;
    update_loaded(txn, definitions, before, sent_etag, changes, origin).await
}

/// [`update_locked`] for a ticket the transaction has already locked and read (`before`).
pub(super) async fn update_loaded(
    txn: &WriteTxn,
    definitions: &BTreeMap<String, PropertyDefinition>,
    before: Ticket,
    sent_etag: &str,
    changes: TicketChanges,
    origin: &Origin,
) -> Result<Ticket, Error> {
    let id = before.id;
    etag::check(RESOURCE, id, before.version, sent_etag)?;
    if before.archived() {
        return Err(Error::precondition(
            "TICKET_ARCHIVED",
            format!("ticket {id} is archived; restore it before changing it"),
        ));
    }
    let mut ticket = before.clone();
    let moves_pipeline = changes
        .pipeline_id
        .is_some_and(|pipeline_id| pipeline_id != ticket.pipeline_id);
    if moves_pipeline || changes.stage_id.is_some() {
        let pipeline_id = changes.pipeline_id.unwrap_or(ticket.pipeline_id);
        let pipeline = existing_pipeline(txn, pipeline_id).await?;
        // Moving to another pipeline without naming a stage lands in its first stage.
        let requested_stage = changes.stage_id.or(if moves_pipeline {
            None
        } else {
            Some(ticket.stage_id)
        });
        let stage = pipeline.place(requested_stage)?;
        ticket.pipeline_id = pipeline.id;
        ticket.stage_id = stage.id;
        ticket.close_time = close_time_after(ticket.close_time, stage.state, now());
    }
    changes.apply_fields(&mut ticket)?;
    let value_changes = normalize_changes(definitions, &before.properties, &mut ticket.properties)?;
    write_change(txn, &before, ticket, value_changes, now(), origin).await
}

/// Writes a locked ticket's change as of `update_time`: the row, the property values that changed, the new
/// requester as a follower, and the history event for whatever differs from `before`.
pub(super) async fn write_change(
    txn: &WriteTxn,
    before: &Ticket,
    ticket: Ticket,
    value_changes: BTreeMap<String, Option<TypedValue>>,
    update_time: DateTime<Utc>,
    origin: &Origin,
) -> Result<Ticket, Error> {
    let saved = save_as_of(txn, ticket, update_time).await?;
    properties::write_values(txn, saved.id, value_changes).await?;
    if saved.requester_id != before.requester_id && !saved.requester_id.is_empty() {
        followers::add_follower(txn, saved.id, &saved.requester_id).await?;
    }
    if let Some(event) = NewEvent::for_update(before, &saved) {
        record_event(txn, origin, event).await?;
    }
    Ok(saved)
}

async fn archive_locked(
    txn: &WriteTxn,
    id: i64,
    sent_etag: &str,
    origin: &Origin,
) -> Result<Ticket, Error> {
    let mut ticket = lock_ticket(txn, id).await?;
    etag::check(RESOURCE, id, ticket.version, sent_etag)?;
    if ticket.archived() {
        return Err(Error::precondition(
            "TICKET_ARCHIVED",
            format!("ticket {id} is already archived"),
        ));
    }
    let archive_time = now();
    ticket.archive_time = Some(archive_time);
    let saved = save(txn, ticket).await?;
    record_event(
        txn,
        origin,
        NewEvent::plain(
            id,
            crate::domain::event::EventKind::Archived,
            vec![archive_change(None, Some(archive_time))],
            None,
        ),
    )
    .await?;
    Ok(saved)
}

fn archive_change(before: Option<DateTime<Utc>>, after: Option<DateTime<Utc>>) -> FieldChange {
    FieldChange {
        field: TicketField::ArchiveTime,
        old_value: time_text(before),
        new_value: time_text(after),
    }
}

/// Reads a ticket for change. PostgreSQL locks the row (`FOR UPDATE`) so concurrent writers queue and each
/// sees the previous one's result; SQLite's writes are already serialised by the store's write gate.
pub(super) async fn lock_ticket(txn: &WriteTxn, id: i64) -> Result<Ticket, Error> {
    let locked = fetch::locked_ticket(txn, id)
        .await?
        .ok_or_else(|| Error::not_found(RESOURCE, id))?;
    if !locked.has_cards {
        // Spares the commit its own look for cards to follow a change of this ticket. A card sent in this
        // transaction (under this lock) takes it back: see `WriteTxn::push_render`.
        txn.remember_without_cards(id);
    }
    Ok(locked.ticket)
}

/// A placed ticket's close time: set only in a CLOSED stage, where it is the time given or the update time.
pub(super) fn close_time_at(
    state: TicketState,
    times: &HistoricalTimes,
    update_time: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    match (state, times.close_time) {
        (TicketState::Open, Some(_)) => Err(Error::invalid(
            "close_time",
            "only a ticket in a CLOSED stage has a close time",
        )),
        (TicketState::Open, None) => Ok(None),
        (TicketState::Closed, given) => Ok(Some(given.unwrap_or(update_time))),
    }
}

/// Writes back a changed ticket's row: a new update time and version, guarded by the version it was read at.
async fn save(txn: &WriteTxn, ticket: Ticket) -> Result<Ticket, Error> {
    save_as_of(txn, ticket, now()).await
}

/// [`save`] with the update time given: an import overwriting a ticket keeps its history's times (and its
/// `create_time`, which only an import ever changes).
pub(super) async fn save_as_of(
    txn: &WriteTxn,
    mut ticket: Ticket,
    update_time: DateTime<Utc>,
) -> Result<Ticket, Error> {
    let read_version = ticket.version;
    ticket.update_time = update_time;
    ticket.version += 1;
    let updated = ticket::Entity::update_many()
        .set(ticket::ActiveModel {
            id: NotSet,
            subject: Set(ticket.subject.clone()),
            content: Set(ticket.content.clone()),
            pipeline_id: Set(ticket.pipeline_id),
            stage_id: Set(ticket.stage_id),
            priority: Set(ticket.priority.map(|p| p.as_str().to_owned())),
            requester_id: Set(ticket.requester_id.clone()),
            assignee_id: Set(ticket.assignee_id.clone()),
            organization_id: Set(ticket.organization_id.clone()),
            ticket_type: Set(ticket.ticket_type.clone()),
            tags: Set(to_json(&ticket.tags)?),
            project_id: Set(ticket.project_id.clone()),
            external_id: Set(stored_external_id(&ticket.external_id)),
            create_time: Set(ticket.create_time),
            update_time: Set(ticket.update_time),
            close_time: Set(ticket.close_time),
            archive_time: Set(ticket.archive_time),
            version: Set(ticket.version),
        })
        .filter(ticket::Column::Id.eq(ticket.id))
        .filter(ticket::Column::Version.eq(read_version))
        .exec(&**txn)
        .await?;
    if updated.rows_affected != 1 {
        // Unreachable while the row is locked or writes are serialised; kept so a future change to either
        // fails loudly instead of losing an update.
        return Err(Error::EtagMismatch {
            resource: RESOURCE,
            id: ticket.id.to_string(),
            sent: etag::etag(RESOURCE, ticket.id, read_version),
            current: String::from("(changed concurrently)"),
        });
    }
    txn.remember_written(&ticket, Written::Changed);
    Ok(ticket)
}

/// The pipeline a request names, as the write's configuration has it, or INVALID_ARGUMENT on `pipeline_id`.
pub(super) async fn existing_pipeline(txn: &WriteTxn, id: i64) -> Result<Arc<Pipeline>, Error> {
    txn.config()
        .await?
        .pipelines
        .get(&id)
        .cloned()
        .ok_or_else(|| Error::invalid("pipeline_id", format!("pipeline {id} does not exist")))
}

/// Sets or clears `close_time` on every ticket of a stage whose state changed, as if each had just entered
/// it, with a history entry for each.
pub(super) async fn restate_stage_tickets(
    txn: &WriteTxn,
    stage: &stage::Model,
    state: TicketState,
    origin: &Origin,
) -> Result<(), Error> {
    let now = now();
    let close_time = close_time_after(None, state, now);
    // Tickets already closed keep their first close time.
    let affected = ticket::Entity::find()
        .filter(ticket::Column::StageId.eq(stage.id))
        .filter(match state {
            TicketState::Closed => ticket::Column::CloseTime.is_null(),
            TicketState::Open => ticket::Column::CloseTime.is_not_null(),
        })
        .lock_exclusive()
        .all(&**txn)
        .await?;
    if affected.is_empty() {
        return Ok(());
    }
    ticket::Entity::update_many()
        .col_expr(ticket::Column::CloseTime, Expr::value(close_time))
        .col_expr(ticket::Column::UpdateTime, Expr::value(now))
        .col_expr(
            ticket::Column::Version,
            Expr::col(ticket::Column::Version).add(1),
        )
        .filter(ticket::Column::Id.is_in(affected.iter().map(|row| row.id)))
        .exec(&**txn)
        .await?;
    for row in affected {
        let change = FieldChange {
            field: TicketField::CloseTime,
            old_value: time_text(row.close_time),
            new_value: time_text(close_time),
        };
        record_event(
            txn,
            origin,
            NewEvent::plain(
                row.id,
                crate::domain::event::EventKind::Updated,
                vec![change],
                None,
            ),
        )
        .await?;
    }
    Ok(())
}

fn micros_to_time(micros: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::invalid("page_token", "is not a token this server issued"))
}

/// The column's form of an external id: NULL for none, which the unique index never finds equal to another.
fn stored_external_id(external_id: &str) -> Option<String> {
    (!external_id.is_empty()).then(|| external_id.to_owned())
}

/// An insert refused for a unique key: the only one a new ticket can take is its external id (ids are drawn
/// from a sequence), but the index named in the database's message decides, so a key added later is not
/// reported as this one. SQLite names the column `tickets.external_id`, PostgreSQL the index
/// `tickets_external_id`.
fn duplicate(error: DbErr, external_id: &str) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("external_id") => {
            Error::AlreadyExists {
                resource: RESOURCE,
                field: "ticket.external_id".to_owned(),
                value: external_id.to_owned(),
            }
        }
        _ => error.into(),
    }
}

/// The ticket (archived or not) whose external id is `external_id`, if any. Takes any connection so that a
/// write can look inside its own transaction.
pub(super) async fn ticket_id_by_external_id(
    db: &impl ConnectionTrait,
    external_id: &str,
) -> Result<Option<i64>, Error> {
    if external_id.is_empty() {
        return Ok(None);
    }
    let found = ticket::Entity::find()
        .filter(ticket::Column::ExternalId.eq(external_id))
        .select_only()
        .column(ticket::Column::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found)
}

/// Whether a ticket (archived or not) exists.
pub(super) async fn ticket_exists(db: &impl ConnectionTrait, id: i64) -> Result<bool, Error> {
    let found = ticket::Entity::find_by_id(id)
        .select_only()
        .column(ticket::Column::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// NOT_FOUND unless the ticket exists (archived or not).
pub(super) async fn require_ticket(db: &impl ConnectionTrait, id: i64) -> Result<(), Error> {
    if ticket_exists(db, id).await? {
        Ok(())
    } else {
        Err(Error::not_found(RESOURCE, id))
    }
}

/// Reads tickets with their properties by id, in id order; unknown ids are left out.
pub(super) async fn load_many(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<Vec<Ticket>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let select = ticket::Entity::find().filter(ticket::Column::Id.is_in(ids.iter().copied()));
    joined_with_properties(db, select).await
}

/// Reads the tickets `select` finds with their custom properties in one statement (a left join), in id
/// order. Not for pages: a LIMIT would count property rows, not tickets.
async fn joined_with_properties(
    db: &impl ConnectionTrait,
    select: sea_orm::Select<ticket::Entity>,
) -> Result<Vec<Ticket>, Error> {
    select
        .find_with_related(ticket_property_value::Entity)
        .order_by_asc(ticket::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|(row, values)| {
            let properties = values
                .into_iter()
                .map(|value| (value.name, value.value))
                .collect();
            to_domain(row, properties)
        })
        .collect()
}

/// Turns rows into tickets with their custom properties (one extra query for all of them).
async fn with_properties(
    db: &impl ConnectionTrait,
    rows: Vec<ticket::Model>,
) -> Result<Vec<Ticket>, Error> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut values = properties::load_values(db, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let properties = values.remove(&row.id).unwrap_or_default();
            to_domain(row, properties)
        })
        .collect()
}

fn to_domain(row: ticket::Model, properties: BTreeMap<String, String>) -> Result<Ticket, Error> {
    let priority = stored_priority(row.id, row.priority.as_deref())?;
    Ok(Ticket {
        id: row.id,
        subject: row.subject,
        content: row.content,
        pipeline_id: row.pipeline_id,
        stage_id: row.stage_id,
        priority,
        requester_id: row.requester_id,
        assignee_id: row.assignee_id,
        organization_id: row.organization_id,
        ticket_type: row.ticket_type,
        tags: from_json::<Vec<String>>(row.tags)?,
        project_id: row.project_id,
        external_id: row.external_id.unwrap_or_default(),
        properties,
        create_time: row.create_time,
        update_time: row.update_time,
        close_time: row.close_time,
        archive_time: row.archive_time,
        version: row.version,
    })
}

fn stored_priority(id: i64, stored: Option<&str>) -> Result<Option<Priority>, Error> {
    stored
        .map(|stored| {
            Priority::from_stored(stored).ok_or_else(|| {
                Error::internal(format!("ticket {id} has unknown priority {stored:?}"))
            })
        })
        .transpose()
}

/// GetTicket's read, the most frequent call, and the read under a write's lock, as one fixed statement each:
/// the ORM built the same join's SQL text anew for every call and named every column of every row by a
/// formatted string, which was most of the call's instructions. The statement's text is prepared once per
/// connection and its columns are read by position.
mod fetch {
    use std::collections::BTreeMap;

    use sea_orm::{
        ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr,
        Statement, sqlx, sqlx::Row,
    };

    use super::stored_priority;
    use crate::domain::{Error, ticket::Ticket};

    /// The columns [`decode!`] reads, in its order. `tags` is read as text on both stores (PostgreSQL keeps
    /// it as jsonb), so one decoding serves every way of running the statement.
    macro_rules! ticket_select {
        ($placeholder:literal) => {
            ticket_select!($placeholder, "")
        };
        // `$more_columns` come after the 20 that `decode!` reads.
        ($placeholder:literal, $more_columns:expr) => {
            concat!(
                "SELECT t.id, t.subject, t.content, t.pipeline_id, t.stage_id, t.priority, ",
                "t.requester_id, t.assignee_id, t.organization_id, t.ticket_type, CAST(t.tags AS TEXT), ",
                "t.project_id, t.external_id, t.create_time, t.update_time, t.close_time, t.archive_time, ",
                "t.version, v.name, v.value",
                $more_columns,
                " FROM tickets t LEFT JOIN ticket_property_values v ON v.ticket_id = t.id WHERE t.id = ",
                $placeholder
            )
        };
    }

    /// Whether a card is bound to the ticket, as column 20 of a locked read.
    macro_rules! has_cards_column {
        () => {
            ", EXISTS (SELECT 1 FROM cards c WHERE c.ticket_id = t.id)"
        };
    }

    /// One ticket from the rows of [`ticket_select!`]: the ticket's columns repeat, each row adding one
    /// property (none when the left join found nothing). `$get!(row, index, Type)` reads one column.
    macro_rules! decode {
        ($rows:expr, $get:ident) => {{
            let rows = $rows;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            let mut properties = BTreeMap::new();
            for row in &rows {
                if let Some(name) = $get!(row, 18, Option<String>) {
                    properties.insert(name, $get!(row, 19, String));
                }
            }
            let id: i64 = $get!(first, 0, i64);
            let priority: Option<String> = $get!(first, 5, Option<String>);
            let tags: String = $get!(first, 10, String);
            let external_id: Option<String> = $get!(first, 12, Option<String>);
            Ok(Some(Ticket {
                id,
                subject: $get!(first, 1, String),
                content: $get!(first, 2, String),
                pipeline_id: $get!(first, 3, i64),
                stage_id: $get!(first, 4, i64),
                priority: stored_priority(id, priority.as_deref())?,
                requester_id: $get!(first, 6, String),
                assignee_id: $get!(first, 7, String),
                organization_id: $get!(first, 8, String),
                ticket_type: $get!(first, 9, String),
                tags: serde_json::from_str(&tags).map_err(Error::internal)?,
                project_id: $get!(first, 11, String),
                external_id: external_id.unwrap_or_default(),
                properties,
                create_time: $get!(first, 13, chrono::DateTime<chrono::Utc>),
                update_time: $get!(first, 14, chrono::DateTime<chrono::Utc>),
                close_time: $get!(first, 15, Option<chrono::DateTime<chrono::Utc>>),
                archive_time: $get!(first, 16, Option<chrono::DateTime<chrono::Utc>>),
                version: $get!(first, 17, i64),
            }))
        }};
    }

    /// A column of a row read through sqlx.
    macro_rules! sqlx_column {
        ($row:expr, $index:literal, $type:ty) => {
            $row.try_get::<$type, _>($index).map_err(query_error)?
        };
    }

    /// A column of a row read through the ORM's connection (a transaction).
    macro_rules! orm_column {
        ($row:expr, $index:literal, $type:ty) => {
            $row.try_get_by_index::<$type>($index)?
        };
    }

    /// Reads ticket `id` with its properties, archived or not.
    pub(super) async fn ticket(db: &DatabaseConnection, id: i64) -> Result<Option<Ticket>, Error> {
        match db.get_database_backend() {
            DbBackend::Postgres => {
                let rows = sqlx::query(ticket_select!("$1"))
                    .bind(id)
                    .fetch_all(db.get_postgres_connection_pool())
                    .await
                    .map_err(query_error)?;
                decode!(rows, sqlx_column)
            }
            _ => {
                let rows = sqlx::query(ticket_select!("?"))
                    .bind(id)
                    .fetch_all(db.get_sqlite_connection_pool())
                    .await
                    .map_err(query_error)?;
                decode!(rows, sqlx_column)
            }
        }
    }

    /// Reads ticket `id` with its properties inside `txn`, locking its row until the transaction ends (on SQLite
    /// the write transaction already holds the whole database). Only the ticket's row is locked: its properties
    /// and cards change only under that lock.
    pub(super) async fn locked_ticket(
        txn: &DatabaseTransaction,
        id: i64,
    ) -> Result<Option<Locked>, Error> {
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                // The lock first, the read after it, in a statement of its own: READ COMMITTED gives that
                // statement a snapshot taken once the lock is held, so it sees everything the previous
                // holder committed. Read in the locking statement, the ticket's row would be the newest
                // (PostgreSQL re-reads a locked row it waited for) but its properties and cards those of the
                // moment the statement began.
                let locked = txn
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT 1 FROM tickets WHERE id = $1 FOR UPDATE",
                        [id.into()],
                    ))
                    .await?;
                if locked.is_none() {
                    return Ok(None);
                }
                ticket_select!("$1", has_cards_column!())
            }
            _ => ticket_select!("?", has_cards_column!()),
        };
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
            .await?;
        let has_cards = match rows.first() {
            Some(row) => orm_column!(row, 20, bool),
            None => false,
        };
        // A closure, so that `decode!`'s early return of "no such ticket" ends it and not this function.
        let decode = || -> Result<Option<Ticket>, Error> { decode!(rows, orm_column) };
        let ticket = decode()?;
        Ok(ticket.map(|ticket| Locked { ticket, has_cards }))
    }

    /// A ticket read under its lock, and whether a card is bound to it. That stays true or false until the
    /// transaction ends: binding a card takes the same lock.
    pub(in crate::store) struct Locked {
        pub ticket: Ticket,
        pub has_cards: bool,
    }

    /// The store's error for a failed statement, as the ORM would have made it (connection faults included).
    fn query_error(error: sqlx::Error) -> Error {
        DbErr::Query(RuntimeErr::SqlxError(error.into())).into()
    }
}
