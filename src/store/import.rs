//! Bulk import: a chunk of items in one transaction, each matched by `external_id`.
//!
//! One bad item must not sink its chunk, yet every item's writes must be all-or-nothing. Rather than a
//! savepoint per item (whose rollback would also have to unwind the events queued for the outbox), a chunk in
//! which an item fails is rolled back and rerun without that item, which is then answered with its error. A
//! chunk of n items with k bad ones costs k + 1 attempts; imports are mostly clean, so that is one.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{
    Store, WriteTxn,
    comments::insert_comment_as,
    entities::comment,
    properties,
    tickets::{
        close_time_at, existing_pipeline, insert_ticket_at, lock_ticket, ticket_id_by_external_id,
        write_change,
    },
};
use crate::domain::{
    Error, Origin,
    import::{ImportItem, ImportedComment, ItemOutcome, OnConflict},
    now,
    property::{PropertyDefinition, normalize_changes},
    ticket::{Ticket, TicketChanges},
};

/// How often a chunk that lost a race on an `external_id` (another import inserting it at that moment) is
/// rerun before the stream is told to retry.
const CONTENDED_ATTEMPTS: usize = 4;

impl Store {
    /// Imports `items` in one transaction: each outcome in item order, failed items answered with their error
    /// and left out. An error of the whole chunk (the database away) means nothing of it was written.
    pub async fn import_chunk(
        &self,
        items: &[ImportItem],
        on_conflict: OnConflict,
        origin: &Origin,
    ) -> Result<Vec<ItemOutcome>, Error> {
        let mut failed: HashMap<usize, Error> = HashMap::new();
        let mut contended = 0;
        'attempt: loop {
            let txn = self.begin_write().await?;
            let definitions = properties::definitions_for_write(&txn).await?;
            let mut imported = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                if failed.contains_key(&index) {
                    continue;
                }
                match import_item(&txn, &definitions, item, on_conflict, origin).await {
                    Ok(outcome) => imported.push((index, outcome)),
                    Err(Error::Contended(reason)) => {
                        contended += 1;
                        if contended >= CONTENDED_ATTEMPTS {
                            return Err(Error::Contended(reason));
                        }
                        continue 'attempt;
                    }
                    Err(error @ (Error::Unavailable(_) | Error::Internal(_))) => return Err(error),
                    Err(error) => {
                        failed.insert(index, error);
                        continue 'attempt;
                    }
                }
            }
            txn.commit().await?;
            let mut outcomes: Vec<Option<ItemOutcome>> = (0..items.len()).map(|_| None).collect();
            for (index, outcome) in imported {
                outcomes[index] = Some(outcome);
            }
            for (index, error) in failed {
                outcomes[index] = Some(ItemOutcome::Failed(error));
            }
            return outcomes
                .into_iter()
                .map(|outcome| {
                    outcome.ok_or_else(|| {
                        Error::internal("an import item was neither imported nor failed")
                    })
                })
                .collect();
        }
    }
}

async fn import_item(
    txn: &WriteTxn,
    definitions: &BTreeMap<String, PropertyDefinition>,
    item: &ImportItem,
    on_conflict: OnConflict,
    origin: &Origin,
) -> Result<ItemOutcome, Error> {
    let external_id = &item.ticket.draft.external_id;
    match (
        ticket_id_by_external_id(&**txn, external_id).await?,
        on_conflict,
    ) {
        (Some(id), OnConflict::Skip) => Ok(ItemOutcome::Skipped(id)),
        (Some(id), OnConflict::Update) => {
            let ticket = overwrite(txn, definitions, id, item, origin).await?;
            add_comments(txn, &ticket, &item.comments, origin, true).await?;
            Ok(ItemOutcome::Updated(id))
        }
        (None, _) => {
            let inserted =
                insert_ticket_at(txn, definitions, item.ticket.clone(), origin, &item.times).await;
            let ticket = match inserted {
                Ok(ticket) => ticket,
                // Another import inserted this external id since the lookup: rerun, and find it.
                Err(Error::AlreadyExists { field, .. }) if field.ends_with("external_id") => {
                    return Err(Error::Contended(format!(
                        "external_id {external_id:?} was imported concurrently"
                    )));
                }
                Err(error) => return Err(error),
            };
            add_comments(txn, &ticket, &item.comments, origin, false).await?;
            Ok(ItemOutcome::Created(ticket.id))
        }
    }
}

/// Replaces an imported ticket's fields, properties and times with the item's, recording what changed.
async fn overwrite(
    txn: &WriteTxn,
    definitions: &BTreeMap<String, PropertyDefinition>,
    id: i64,
    item: &ImportItem,
    origin: &Origin,
) -> Result<Ticket, Error> {
    let before = lock_ticket(txn, id).await?;
    if before.archived() {
        return Err(Error::precondition(
            "TICKET_ARCHIVED",
            format!(
                "ticket {id} (external_id {:?}) is archived; restore it before importing over it",
                before.external_id
            ),
        ));
    }
    let draft = &item.ticket.draft;
    let mut ticket = before.clone();
    let pipeline = existing_pipeline(txn, draft.pipeline_id.unwrap_or(before.pipeline_id))
        .await
        .map_err(|error| error.within("ticket"))?;
    let stage = pipeline
        .place(draft.stage_id)
        .map_err(|error| error.within("ticket"))?;
    ticket.pipeline_id = pipeline.id;
    ticket.stage_id = stage.id;
    TicketChanges::replacing(draft.clone())
        .apply_fields(&mut ticket)
        .map_err(|error| error.within("ticket"))?;
    let value_changes = normalize_changes(definitions, &before.properties, &mut ticket.properties)
        .map_err(|error| error.within("ticket"))?;
    ticket.create_time = item.times.create_time.unwrap_or(before.create_time);
    let update_time = item.times.update_time.unwrap_or_else(now);
    if update_time < ticket.create_time {
        return Err(Error::invalid(
            "ticket.update_time",
            "is before the ticket's create_time",
        ));
    }
    ticket.close_time = close_time_at(stage.state, &item.times, update_time)
        .map_err(|error| error.within("ticket"))?;
    write_change(txn, &before, ticket, value_changes, update_time, origin).await
}

/// Adds an item's comments with their own authors and times. Over an existing ticket (`skip_known`), a comment
/// it already has — same author, time and body — is a resent one and is not added again.
async fn add_comments(
    txn: &WriteTxn,
    ticket: &Ticket,
    comments: &[ImportedComment],
    origin: &Origin,
    skip_known: bool,
) -> Result<(), Error> {
    let known: Vec<comment::Model> = if skip_known && !comments.is_empty() {
        comment::Entity::find()
            .filter(comment::Column::TicketId.eq(ticket.id))
            .all(&**txn)
            .await?
    } else {
        Vec::new()
    };
    for imported in comments {
        let author_id = if imported.author_id.is_empty() {
            origin.actor_id.clone()
        } else {
            imported.author_id.clone()
        };
        let create_time = imported.create_time.unwrap_or(ticket.create_time);
        let already = known.iter().any(|row| {
            row.author_id == author_id
                && row.create_time == create_time
                && row.body == imported.body
        });
        if already {
            continue;
        }
        insert_comment_as(
            txn,
            ticket.id,
            imported.body.clone(),
            imported.visibility,
            (author_id, create_time),
            origin,
        )
        .await?;
    }
    Ok(())
}
