//! The outbox: history entries and card renders, appended in commit order so that a reader taking rows in
//! id order never steps over a row that commits later.
//!
//! Ids come from sequences, and two PostgreSQL transactions can commit in the opposite order to the one in
//! which they drew ids: a tailer that had read id 12 would skip id 11 when it became visible. Of the known
//! ways out (DESIGN.md) this takes the simplest: every transaction appends its entries only at the very end,
//! holding a transaction-level advisory lock from the first append until commit, so ids are drawn and made
//! visible in one order. Taking the lock last, after every row lock the transaction needs, means it cannot
//! deadlock with them. The price is that outbox-writing commits queue one behind the other (PostgreSQL's
//! group commit cannot merge them); BENCHMARKS.md measures it. SQLite's write gate already serialises writers.
//! A `NOTIFY` in the same transaction wakes every replica's tailer when the commit lands.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::Notify;

use super::{
    Store, WriteTxn, cards,
    entities::{card_render, ticket_event},
    from_json, tickets, to_json,
};
use crate::domain::{
    Error,
    chat_card::CardRender,
    event::{NewEvent, TicketEvent},
    now,
    ticket::Ticket,
};

/// PostgreSQL `NOTIFY` channel raised by every commit that appends to the outbox.
pub const OUTBOX_CHANNEL: &str = "ticketd_outbox";
/// Advisory lock that orders outbox appends ("outb").
const OUTBOX_LOCK_KEY: i64 = 0x6f75_7462;

/// Entries a transaction will append when it commits.
#[derive(Default)]
pub(super) struct Pending {
    events: Vec<(String, NewEvent)>,
    renders: Vec<CardRender>,
}

/// Wakes the outbox tailer of this process.
#[derive(Default)]
pub struct OutboxSignal {
    notify: Notify,
}

impl OutboxSignal {
    /// Something was appended.
    pub fn notify(&self) {
        // notify_one keeps a permit when the tailer is busy, so a wake-up is never lost.
        self.notify.notify_one();
    }

    /// Waits for the next append.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

impl WriteTxn {
    /// Queues a history entry for this transaction's commit.
    pub(super) fn push_event(&self, actor_id: &str, event: NewEvent) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.events.push((actor_id.to_owned(), event));
        }
    }

    /// Queues a card render for this transaction's commit.
    pub(super) fn push_render(&self, render: CardRender) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.renders.push(render);
        }
    }

    fn take_pending(&self) -> Pending {
        self.outbox
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }
}

/// Appends what `txn` queued; returns whether anything was appended.
pub(super) async fn flush(txn: &WriteTxn) -> Result<bool, Error> {
    let Pending {
        events,
        mut renders,
    } = txn.take_pending();
    if events.is_empty() && renders.is_empty() {
        return Ok(false);
    }
    let changed: BTreeSet<i64> = events.iter().map(|(_, event)| event.ticket_id).collect();
    let snapshots = tickets::load_many(&**txn, &changed.into_iter().collect::<Vec<_>>()).await?;
    let followed = cards::follow_tickets(txn, &snapshots).await?;
    renders.extend(followed);

    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({OUTBOX_LOCK_KEY})"))
            .await?;
    }
    let created = now();
    let by_id: BTreeMap<i64, &Ticket> =
        snapshots.iter().map(|ticket| (ticket.id, ticket)).collect();
    let rows = events
        .into_iter()
        .map(|(actor_id, event)| {
            Ok(ticket_event::ActiveModel {
                event_id: NotSet,
                ticket_id: Set(event.ticket_id),
                kind: Set(event.kind.as_str().to_owned()),
                actor_id: Set(actor_id),
                changes: Set(to_json(&event.changes)?),
                detail: Set(event.detail.as_ref().map(to_json).transpose()?),
                create_time: Set(created),
                ticket: Set(by_id.get(&event.ticket_id).map(to_json).transpose()?),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if !rows.is_empty() {
        ticket_event::Entity::insert_many(rows)
            .exec_without_returning(&**txn)
            .await?;
    }
    let renders = renders
        .into_iter()
        .map(|render| {
            Ok(card_render::ActiveModel {
                position: NotSet,
                card_id: Set(render.card_id),
                version: Set(render.version),
                ticket_id: Set(render.ticket_id),
                group_id: Set(render.group_id),
                view: Set(render.view),
                texts: Set(to_json(&render.texts)?),
                create_time: Set(created),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if !renders.is_empty() {
        card_render::Entity::insert_many(renders)
            .exec_without_returning(&**txn)
            .await?;
    }
    if backend == DbBackend::Postgres {
        txn.execute_unprepared(&format!("NOTIFY {OUTBOX_CHANNEL}"))
            .await?;
    }
    Ok(true)
}

/// A committed card render with its outbox position.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionedRender {
    pub position: i64,
    pub render: CardRender,
}

impl Store {
    /// The newest history entry's id (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, Error> {
        let last: Option<i64> = ticket_event::Entity::find()
            .select_only()
            .column_as(ticket_event::Column::EventId.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok(last.unwrap_or(0))
    }

    /// Up to `limit` history entries after `after`, oldest first, with their ticket snapshots.
    pub async fn events_after(&self, after: i64, limit: u64) -> Result<Vec<TicketEvent>, Error> {
        ticket_event::Entity::find()
            .filter(ticket_event::Column::EventId.gt(after))
            .order_by_asc(ticket_event::Column::EventId)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(super::history::event_to_domain)
            .collect()
    }

    /// The newest card render's position (0 when there is none).
    pub async fn last_render_position(&self) -> Result<i64, Error> {
        let last: Option<i64> = card_render::Entity::find()
            .select_only()
            .column_as(card_render::Column::Position.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok(last.unwrap_or(0))
    }

    /// Up to `limit` card renders after position `after`, in commit order.
    pub async fn renders_after(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<PositionedRender>, Error> {
        card_render::Entity::find()
            .filter(card_render::Column::Position.gt(after))
            .order_by_asc(card_render::Column::Position)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(render_to_domain)
            .collect()
    }
}

pub(super) fn render_to_domain(row: card_render::Model) -> Result<PositionedRender, Error> {
    Ok(PositionedRender {
        position: row.position,
        render: CardRender {
            card_id: row.card_id,
            version: row.version,
            ticket_id: row.ticket_id,
            group_id: row.group_id,
            view: row.view,
            texts: from_json(row.texts)?,
        },
    })
}
