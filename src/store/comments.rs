//! Comments on tickets: adding one (recorded in the ticket's history) and listing them, public ones only
//! for customers.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{
    Store, WriteTxn,
    access::require_visible,
    entities::{comment, ticket},
    history::record_event,
};
use crate::domain::{
    Error, Origin,
    access::TicketScope,
    comment::{Comment, Visibility},
    event::{EventDetail, EventKind, NewEvent},
    now,
    page::{Cursor, Page},
    ticket::Ticket,
};

impl Store {
    /// Appends a comment to a ticket that is not archived.
    pub async fn add_comment(
        &self,
        ticket_id: i64,
        body: String,
        visibility: Visibility,
        scope: Option<&TicketScope>,
        origin: &Origin,
    ) -> Result<Comment, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            require_visible(&**txn, scope, ticket_id).await?;
            let ticket = ticket::Entity::find_by_id(ticket_id)
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(Ticket::RESOURCE, ticket_id))?;
            if ticket.archive_time.is_some() {
                return Err(Error::precondition(
                    "TICKET_ARCHIVED",
                    format!("ticket {ticket_id} is archived; restore it before commenting"),
                ));
            }
            insert_comment(txn, ticket_id, body, visibility, origin).await
        })
        .await
    }

    /// A ticket's comments, oldest first.
    /// A customer (`scope` set) sees only public comments of tickets its portal shows.
    pub async fn list_comments(
        &self,
        ticket_id: i64,
        scope: Option<&TicketScope>,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<Comment>, Error> {
        require_visible(&self.db, scope, ticket_id).await?;
        let mut select = comment::Entity::find().filter(comment::Column::TicketId.eq(ticket_id));
        if scope.is_some() {
            select = select.filter(comment::Column::Visibility.eq(Visibility::Public.as_str()));
        }
        if let Some(cursor) = after {
            select = select.filter(comment::Column::Id.gt(cursor.id));
        }
        let rows = select
            .order_by_asc(comment::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let comments = rows
            .into_iter()
            .map(comment_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(comments, page_size, |comment| {
            Cursor {
                key: comment.id,
                id: comment.id,
            }
        }))
    }
}

/// Appends the caller's comment and its COMMENT_ADDED event inside `txn`; the caller has checked the ticket.
pub(super) async fn insert_comment(
    txn: &WriteTxn,
    ticket_id: i64,
    body: String,
    visibility: Visibility,
    origin: &Origin,
) -> Result<Comment, Error> {
    let written = (origin.actor_id.clone(), now());
    insert_comment_as(txn, ticket_id, body, visibility, written, origin).await
}

/// [`insert_comment`] with the author and time given: an imported comment keeps who wrote it and when.
pub(super) async fn insert_comment_as(
    txn: &WriteTxn,
    ticket_id: i64,
    body: String,
    visibility: Visibility,
    (author_id, create_time): (String, chrono::DateTime<chrono::Utc>),
    origin: &Origin,
) -> Result<Comment, Error> {
    let row = comment::Entity::insert(comment::ActiveModel {
        id: NotSet,
        ticket_id: Set(ticket_id),
        author_id: Set(author_id),
        body: Set(body),
        visibility: Set(visibility.as_str().to_owned()),
        create_time: Set(create_time),
    })
    .exec_with_returning(&**txn)
    .await?;
    let comment = comment_to_domain(row)?;
    record_event(
        txn,
        origin,
        NewEvent::plain(
            ticket_id,
            EventKind::CommentAdded,
            Vec::new(),
            Some(EventDetail::Comment(comment.clone())),
        ),
    )
    .await?;
    Ok(comment)
}

fn comment_to_domain(row: comment::Model) -> Result<Comment, Error> {
    let visibility = Visibility::from_stored(&row.visibility).ok_or_else(|| {
        Error::internal(format!(
            "comment {} has unknown visibility {:?}",
            row.id, row.visibility
        ))
    })?;
    Ok(Comment {
        id: row.id,
        ticket_id: row.ticket_id,
        author_id: row.author_id,
        body: row.body,
        visibility,
        create_time: row.create_time,
    })
}
