//! Ticket history (the outbox): queuing a change's event in its transaction, and listing a ticket's events.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, WriteTxn, access::require_visible, entities::ticket_event, from_json};
use crate::domain::{
    Error, Origin,
    access::TicketScope,
    event::{EventKind, NewEvent, Notify, SideEffects, TicketEvent},
    page::{Cursor, Page},
};

impl Store {
    /// A ticket's history, oldest first.
    /// For a customer (`scope` set) the ticket must be one its portal shows; the caller redacts the events.
    pub async fn list_history(
        &self,
        ticket_id: i64,
        scope: Option<&TicketScope>,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<TicketEvent>, Error> {
        require_visible(&self.db, scope, ticket_id).await?;
        let mut select =
            ticket_event::Entity::find().filter(ticket_event::Column::TicketId.eq(ticket_id));
        if let Some(cursor) = after {
            select = select.filter(ticket_event::Column::EventId.gt(cursor.id));
        }
        let rows = select
            .order_by_asc(ticket_event::Column::EventId)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let events = rows
            .into_iter()
            .map(event_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(events, page_size, |event| Cursor {
            key: event.event_id,
            id: event.event_id,
        }))
    }
}

/// Queues an event in the caller's transaction; it is appended with the commit, so the change and its record
/// commit or vanish together.
pub(super) async fn record_event(
    txn: &WriteTxn,
    origin: &Origin,
    event: NewEvent,
) -> Result<(), Error> {
    txn.push_event(&origin.actor_id, origin.side_effects, event);
    Ok(())
}

pub(super) fn event_to_domain(row: ticket_event::Model) -> Result<TicketEvent, Error> {
    let kind = EventKind::from_stored(&row.kind).ok_or_else(|| {
        Error::internal(format!(
            "event {} has unknown kind {:?}",
            row.event_id, row.kind
        ))
    })?;
    let notify = Notify::from_stored(&row.notify).ok_or_else(|| {
        Error::internal(format!(
            "event {} has unknown notify {:?}",
            row.event_id, row.notify
        ))
    })?;
    Ok(TicketEvent {
        event_id: row.event_id,
        ticket_id: row.ticket_id,
        kind,
        changes: from_json(row.changes)?,
        actor_id: row.actor_id,
        create_time: row.create_time,
        detail: row.detail.map(from_json).transpose()?,
        ticket: row.ticket.map(from_json).transpose()?,
        side_effects: SideEffects {
            notify,
            skip_automations: row.skip_automations,
        },
        cause_event_id: row.cause_event_id,
    })
}
