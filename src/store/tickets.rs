//! Ticket reads and writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Order},
};

use super::{
    Store, WriteTxn,
    entities::{stage, ticket},
    from_json, pipelines, to_json,
};
use crate::domain::{
    Error, RequestKey, etag, now,
    page::{Cursor, Page},
    pipeline::{DEFAULT_PIPELINE_ID, Pipeline, TicketState},
    ticket::{Priority, Ticket, TicketChanges, TicketDraft, close_time_after},
};

const RESOURCE: &str = Ticket::RESOURCE;

/// The column tickets are listed by; ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOrderField {
    Id,
    CreateTime,
    UpdateTime,
}

/// A listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketOrder {
    pub field: TicketOrderField,
    pub descending: bool,
}

/// One page request of `ListTickets`.
#[derive(Debug, Clone)]
pub struct TicketListQuery {
    pub order: TicketOrder,
    pub show_archived: bool,
    pub page_size: u64,
    pub after: Option<Cursor>,
}

impl TicketOrder {
    /// The cursor a page ending at `ticket` continues from.
    pub fn cursor_of(&self, ticket: &Ticket) -> Cursor {
        let key = match self.field {
            TicketOrderField::Id => ticket.id,
            TicketOrderField::CreateTime => ticket.create_time.timestamp_micros(),
            TicketOrderField::UpdateTime => ticket.update_time.timestamp_micros(),
        };
        Cursor { key, id: ticket.id }
    }
}

impl Store {
    /// Creates a ticket in its pipeline's requested or first stage.
    pub async fn create_ticket(
        &self,
        draft: TicketDraft,
        key: Option<&RequestKey>,
    ) -> Result<Ticket, Error> {
        self.write(key, async |txn| {
            let pipeline_id = draft.pipeline_id.unwrap_or(DEFAULT_PIPELINE_ID);
            let pipeline = existing_pipeline(&**txn, pipeline_id).await?;
            let stage = pipeline.place(draft.stage_id)?;
            let now = now();
            let row = ticket::ActiveModel {
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
                properties: Set(to_json(&draft.properties)?),
                create_time: Set(now),
                update_time: Set(now),
                close_time: Set(close_time_after(None, stage.state, now)),
                archive_time: Set(None),
                version: Set(1),
            };
            let inserted = ticket::Entity::insert(row)
                .exec_with_returning(&**txn)
                .await?;
            to_domain(inserted)
        })
        .await
    }

    /// Reads one ticket, archived or not.
    pub async fn get_ticket(&self, id: i64) -> Result<Ticket, Error> {
        let row = ticket::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found(RESOURCE, id))?;
        to_domain(row)
    }

    /// One page of tickets in the query's order, strictly after its cursor.
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
        let mut select = ticket::Entity::find();
        if !query.show_archived {
            select = select.filter(ticket::Column::ArchiveTime.is_null());
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
        let tickets = rows
            .into_iter()
            .map(to_domain)
            .collect::<Result<Vec<_>, _>>()?;
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
        key: Option<&RequestKey>,
    ) -> Result<Ticket, Error> {
        self.write(key, async |txn| {
            let mut ticket = lock_ticket(txn, id).await?;
            etag::check(RESOURCE, id, ticket.version, sent_etag)?;
            if ticket.archived() {
                return Err(Error::precondition(
                    "TICKET_ARCHIVED",
                    format!("ticket {id} is archived; restore it before changing it"),
                ));
            }
            let moves_pipeline = changes
                .pipeline_id
                .is_some_and(|pipeline_id| pipeline_id != ticket.pipeline_id);
            if moves_pipeline || changes.stage_id.is_some() {
                let pipeline_id = changes.pipeline_id.unwrap_or(ticket.pipeline_id);
                let pipeline = existing_pipeline(&**txn, pipeline_id).await?;
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
            save(txn, ticket).await
        })
        .await
    }

    /// Moves a ticket to the trash.
    pub async fn archive_ticket(
        &self,
        id: i64,
        sent_etag: &str,
        key: Option<&RequestKey>,
    ) -> Result<Ticket, Error> {
        self.write(key, async |txn| {
            let mut ticket = lock_ticket(txn, id).await?;
            etag::check(RESOURCE, id, ticket.version, sent_etag)?;
            if ticket.archived() {
                return Err(Error::precondition(
                    "TICKET_ARCHIVED",
                    format!("ticket {id} is already archived"),
                ));
            }
            ticket.archive_time = Some(now());
            save(txn, ticket).await
        })
        .await
    }

    /// Takes a ticket out of the trash.
    pub async fn restore_ticket(&self, id: i64, key: Option<&RequestKey>) -> Result<Ticket, Error> {
        self.write(key, async |txn| {
            let mut ticket = lock_ticket(txn, id).await?;
            if !ticket.archived() {
                return Err(Error::precondition(
                    "TICKET_NOT_ARCHIVED",
                    format!("ticket {id} is not archived"),
                ));
            }
            ticket.archive_time = None;
            save(txn, ticket).await
        })
        .await
    }
}

/// Reads a ticket for change. PostgreSQL locks the row (`FOR UPDATE`) so concurrent writers queue and each
/// sees the previous one's result; SQLite's writes are already serialised by the store's write gate.
async fn lock_ticket(txn: &WriteTxn, id: i64) -> Result<Ticket, Error> {
    let row = ticket::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(RESOURCE, id))?;
    to_domain(row)
}

/// Writes back a changed ticket: a new update time and version, guarded by the version it was read at.
async fn save(txn: &WriteTxn, mut ticket: Ticket) -> Result<Ticket, Error> {
    let read_version = ticket.version;
    ticket.update_time = now();
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
            properties: Set(to_json(&ticket.properties)?),
            create_time: NotSet,
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
    Ok(ticket)
}

/// The pipeline a request names, or INVALID_ARGUMENT on `pipeline_id`.
async fn existing_pipeline(db: &impl ConnectionTrait, id: i64) -> Result<Pipeline, Error> {
    pipelines::load_pipeline(db, id)
        .await?
        .ok_or_else(|| Error::invalid("pipeline_id", format!("pipeline {id} does not exist")))
}

/// Sets or clears `close_time` on every ticket of a stage whose state changed, as if each had just entered it.
pub(super) async fn restate_stage_tickets(
    txn: &WriteTxn,
    stage: &stage::Model,
    state: TicketState,
) -> Result<(), Error> {
    let now = now();
    let close_time = close_time_after(None, state, now);
    let mut update = ticket::Entity::update_many()
        .col_expr(ticket::Column::CloseTime, Expr::value(close_time))
        .col_expr(ticket::Column::UpdateTime, Expr::value(now))
        .col_expr(
            ticket::Column::Version,
            Expr::col(ticket::Column::Version).add(1),
        )
        .filter(ticket::Column::StageId.eq(stage.id));
    // Tickets already closed keep their first close time.
    update = match state {
        TicketState::Closed => update.filter(ticket::Column::CloseTime.is_null()),
        TicketState::Open => update.filter(ticket::Column::CloseTime.is_not_null()),
    };
    update.exec(&**txn).await?;
    Ok(())
}

fn micros_to_time(micros: i64) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| Error::invalid("page_token", "is not a token this server issued"))
}

fn to_domain(row: ticket::Model) -> Result<Ticket, Error> {
    let priority = match row.priority.as_deref() {
        None => None,
        Some(stored) => Some(Priority::from_stored(stored).ok_or_else(|| {
            Error::internal(format!("ticket {} has unknown priority {stored:?}", row.id))
        })?),
    };
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
        properties: from_json::<BTreeMap<String, String>>(row.properties)?,
        create_time: row.create_time,
        update_time: row.update_time,
        close_time: row.close_time,
        archive_time: row.archive_time,
        version: row.version,
    })
}
