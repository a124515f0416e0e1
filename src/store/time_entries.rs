//! Time logged on tickets: recording, listing and deleting entries, each on a ticket the viewer can see.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{
    Store,
    access::require_visible,
    entities::{ticket, time_entry},
};
use crate::domain::{
    Error, Origin,
    access::TicketScope,
    now,
    page::{Cursor, Page},
    time_entry::{NewTimeEntry, TimeEntry},
};

impl Store {
    /// Records time on a ticket the viewer can see and that is not archived.
    pub async fn log_time(
        &self,
        scope: Option<&TicketScope>,
        entry: NewTimeEntry,
        origin: &Origin,
    ) -> Result<TimeEntry, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            require_visible(&**txn, scope, entry.ticket_id).await?;
            let archived = ticket::Entity::find_by_id(entry.ticket_id)
                .select_only()
                .column(ticket::Column::ArchiveTime)
                .into_tuple::<Option<chrono::DateTime<chrono::Utc>>>()
                .one(&**txn)
                .await?
                .flatten()
                .is_some();
            if archived {
                return Err(Error::precondition(
                    "TICKET_ARCHIVED",
                    format!(
                        "ticket {} is archived; restore it before logging time",
                        entry.ticket_id
                    ),
                ));
            }
            let row = time_entry::Entity::insert(time_entry::ActiveModel {
                id: NotSet,
                ticket_id: Set(entry.ticket_id),
                author_id: Set(origin.actor_id.clone()),
                minutes: Set(entry.minutes),
                work_date: Set(entry.work_date.format("%Y-%m-%d").to_string()),
                note: Set(entry.note),
                create_time: Set(now()),
            })
            .exec_with_returning(&**txn)
            .await?;
            time_entry_to_domain(row)
        })
        .await
    }

    /// A ticket's time entries, oldest first; `author` limits them to one author's.
    pub async fn list_time_entries(
        &self,
        scope: Option<&TicketScope>,
        ticket_id: i64,
        author: Option<&str>,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<TimeEntry>, Error> {
        require_visible(&self.db, scope, ticket_id).await?;
        let mut select =
            time_entry::Entity::find().filter(time_entry::Column::TicketId.eq(ticket_id));
        if let Some(author) = author {
            select = select.filter(time_entry::Column::AuthorId.eq(author));
        }
        if let Some(cursor) = after {
            select = select.filter(time_entry::Column::Id.gt(cursor.id));
        }
        let entries = select
            .order_by_asc(time_entry::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(time_entry_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(entries, page_size, |entry| Cursor {
            key: entry.id,
            id: entry.id,
        }))
    }

    /// Deletes a time entry on a ticket the viewer can see; `author` (when set) must have written it.
    pub async fn delete_time_entry(
        &self,
        scope: Option<&TicketScope>,
        id: i64,
        author: Option<&str>,
    ) -> Result<(), Error> {
        self.write(None, async |txn| {
            let row = time_entry::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(TimeEntry::RESOURCE, id))?;
            // A customer learns nothing about entries on tickets it cannot see.
            require_visible(&**txn, scope, row.ticket_id)
                .await
                .map_err(|_| Error::not_found(TimeEntry::RESOURCE, id))?;
            if let Some(author) = author
                && row.author_id != author
            {
                return Err(Error::denied(
                    "id",
                    format!("time entry {id} was logged by someone else; only its author or an admin may delete it"),
                ));
            }
            time_entry::Entity::delete_by_id(id).exec(&**txn).await?;
            Ok(())
        })
        .await
    }
}

fn time_entry_to_domain(row: time_entry::Model) -> Result<TimeEntry, Error> {
    let work_date =
        chrono::NaiveDate::parse_from_str(&row.work_date, "%Y-%m-%d").map_err(|_| {
            Error::internal(format!(
                "time entry {} has a malformed work date {:?}",
                row.id, row.work_date
            ))
        })?;
    Ok(TimeEntry {
        id: row.id,
        ticket_id: row.ticket_id,
        author_id: row.author_id,
        minutes: row.minutes,
        work_date,
        note: row.note,
        create_time: row.create_time,
    })
}
