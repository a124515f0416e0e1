//! `ImportTickets`: a stream of items in, one answer per item out, each sent only after its chunk committed.
//!
//! Reading and committing run in one task per stream, feeding a bounded channel: a client that stops reading
//! answers stops the import from reading items, so memory holds at most one chunk and one channel's worth of
//! answers whatever the stream's length. A chunk is committed when it is full or when the client pauses, so a
//! slow producer's items are not held back waiting for 500 more.

use std::{pin::Pin, time::Duration};

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Status, Streaming};

use super::{TicketApi, mapping::parse_visibility};
use crate::{
    api::{principal, side_effects_from_proto, time_from_proto},
    domain::{
        Error, Origin,
        commands::{HistoricalTimes, NewTicket},
        comment::parse_body,
        event::SideEffects,
        import::{
            CHUNK_MAX_ITEMS, COMMENTS_MAX, ImportItem, ImportedComment, ItemOutcome, OnConflict,
            check_times,
        },
    },
    proto::{self, import_tickets_request::Kind},
    store::Store,
};

pub(super) type ImportStream =
    Pin<Box<dyn Stream<Item = Result<proto::ImportTicketsResponse, Status>> + Send>>;

/// How long the importer waits for the next item before committing a partly filled chunk.
const LINGER: Duration = Duration::from_millis(50);

/// One item as read: its offset and either the checked item or why it was refused.
type Received = (i64, Result<ImportItem, Error>);

impl TicketApi {
    pub(super) async fn import(
        &self,
        request: tonic::Request<Streaming<proto::ImportTicketsRequest>>,
    ) -> Result<ImportStream, Status> {
        let caller = principal(request.extensions())?;
        let mut inbound = request.into_inner();
        let first = inbound.message().await?;
        let options = match first.and_then(|message| message.kind) {
            Some(Kind::Options(options)) => options,
            _ => {
                return Err(Error::invalid(
                    "options",
                    "the first message of an import must carry its options",
                )
                .into());
            }
        };
        let on_conflict = match proto::OnConflict::try_from(options.on_conflict) {
            Ok(proto::OnConflict::Unspecified | proto::OnConflict::Skip) => OnConflict::Skip,
            Ok(proto::OnConflict::Update) => OnConflict::Update,
            Err(_) => {
                return Err(Error::invalid(
                    "options.on_conflict",
                    format!("{} is not an OnConflict", options.on_conflict),
                )
                .into());
            }
        };
        let side_effects = match &options.side_effects {
            // History being moved in is nobody's news.
            None => SideEffects::SILENT,
            Some(asked) => {
                side_effects_from_proto(asked).map_err(|error| error.within("options"))?
            }
        };
        let origin = Origin {
            actor_id: caller.id,
            request: None,
            side_effects,
        };
        let (answers, receiver) = mpsc::channel(CHUNK_MAX_ITEMS);
        tokio::spawn(run(
            self.store.clone(),
            inbound,
            on_conflict,
            origin,
            answers,
        ));
        Ok(Box::pin(ReceiverStream::new(receiver)))
    }
}

type Answers = mpsc::Sender<Result<proto::ImportTicketsResponse, Status>>;

/// Reads items into chunks and commits each; ends when the client's stream ends, breaks or stops listening.
async fn run(
    store: Store,
    mut inbound: Streaming<proto::ImportTicketsRequest>,
    on_conflict: OnConflict,
    origin: Origin,
    answers: Answers,
) {
    let mut chunk: Vec<Received> = Vec::with_capacity(CHUNK_MAX_ITEMS);
    loop {
        let next = if chunk.is_empty() {
            inbound.message().await
        } else {
            match tokio::time::timeout(LINGER, inbound.message()).await {
                Ok(next) => next,
                Err(_paused) => {
                    if !commit(&store, &mut chunk, on_conflict, &origin, &answers).await {
                        return;
                    }
                    continue;
                }
            }
        };
        match next {
            Ok(Some(message)) => match message.kind {
                Some(Kind::Item(item)) => chunk.push((item.offset, item_from_proto(item))),
                Some(Kind::Options(_)) | None => {
                    // Answer what came before, then say why the stream cannot go on.
                    if commit(&store, &mut chunk, on_conflict, &origin, &answers).await {
                        let refusal = Error::invalid(
                            "options",
                            "only the first message of an import carries options; every later one an item",
                        );
                        let _ = answers.send(Err(refusal.into())).await;
                    }
                    return;
                }
            },
            Ok(None) => {
                commit(&store, &mut chunk, on_conflict, &origin, &answers).await;
                return;
            }
            // The client broke off: its unanswered items are not acknowledged, and a resend finds whatever
            // committed by `external_id`.
            Err(_) => return,
        }
        if chunk.len() >= CHUNK_MAX_ITEMS
            && !commit(&store, &mut chunk, on_conflict, &origin, &answers).await
        {
            return;
        }
    }
}

/// Commits the chunk and answers each of its items in order; false when the stream must end (the chunk could
/// not be written, or nobody is listening).
async fn commit(
    store: &Store,
    chunk: &mut Vec<Received>,
    on_conflict: OnConflict,
    origin: &Origin,
    answers: &Answers,
) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let received = std::mem::take(chunk);
    let (offsets, checked): (Vec<i64>, Vec<Result<ImportItem, Error>>) =
        received.into_iter().unzip();
    // Refused items are answered where they stand; the others go to the store, and their outcomes fill in.
    let mut by_index: Vec<Option<ItemOutcome>> = Vec::with_capacity(checked.len());
    let (mut valid_indices, mut items) = (Vec::new(), Vec::new());
    for (index, item) in checked.into_iter().enumerate() {
        match item {
            Ok(item) => {
                valid_indices.push(index);
                items.push(item);
                by_index.push(None);
            }
            Err(error) => by_index.push(Some(ItemOutcome::Failed(error))),
        }
    }
    let outcomes = match store.import_chunk(&items, on_conflict, origin).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            let _ = answers.send(Err(error.into())).await;
            return false;
        }
    };
    for (index, outcome) in valid_indices.into_iter().zip(outcomes) {
        by_index[index] = Some(outcome);
    }
    for (offset, outcome) in offsets.into_iter().zip(by_index) {
        let answer = match outcome {
            Some(ItemOutcome::Created(id) | ItemOutcome::Updated(id)) => {
                proto::ImportTicketsResponse {
                    offset,
                    ticket_id: id,
                    status: None,
                }
            }
            Some(ItemOutcome::Skipped(id)) => proto::ImportTicketsResponse {
                offset,
                ticket_id: id,
                status: Some(rpc_status(Error::AlreadyExists {
                    resource: "ticket",
                    field: "ticket.external_id".to_owned(),
                    value: format!("imported before as ticket {id}"),
                })),
            },
            Some(ItemOutcome::Failed(error)) => proto::ImportTicketsResponse {
                offset,
                ticket_id: 0,
                status: Some(rpc_status(error)),
            },
            None => proto::ImportTicketsResponse {
                offset,
                ticket_id: 0,
                status: Some(rpc_status(Error::internal(
                    "an import item went unanswered",
                ))),
            },
        };
        if answers.send(Ok(answer)).await.is_err() {
            return false;
        }
    }
    true
}

/// An item's error as the `google.rpc.Status` a unary call would have ended with, details included.
fn rpc_status(error: Error) -> tonic_types::Status {
    let status = Status::from(error);
    tonic_types::Status::decode(status.details()).unwrap_or_else(|_| tonic_types::Status {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: Vec::new(),
    })
}

/// Checks an item; errors name fields of the item (`ticket.subject`, `comments[2].body`).
fn item_from_proto(item: proto::ImportItem) -> Result<ImportItem, Error> {
    let ticket = item
        .ticket
        .ok_or_else(|| Error::invalid("ticket", "is required"))?;
    let times = HistoricalTimes {
        create_time: optional_time("ticket.create_time", ticket.create_time)?,
        update_time: optional_time("ticket.update_time", ticket.update_time)?,
        close_time: optional_time("ticket.close_time", ticket.close_time)?,
    };
    check_times(&times)?;
    let draft = super::draft_from_proto(ticket).map_err(|error| error.within("ticket"))?;
    if draft.external_id.is_empty() {
        return Err(Error::invalid(
            "ticket.external_id",
            "is required: it is how a resent item is recognised",
        ));
    }
    if item.comments.len() > COMMENTS_MAX {
        return Err(Error::invalid(
            "comments",
            format!(
                "{} comments; at most {COMMENTS_MAX} per item",
                item.comments.len()
            ),
        ));
    }
    let comments = item
        .comments
        .into_iter()
        .enumerate()
        .map(|(index, comment)| {
            comment_from_proto(comment).map_err(|error| error.within(&format!("comments[{index}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImportItem {
        ticket: NewTicket {
            draft,
            associations: Vec::new(),
        },
        times,
        comments,
    })
}

fn comment_from_proto(comment: proto::ImportComment) -> Result<ImportedComment, Error> {
    Ok(ImportedComment {
        body: parse_body(comment.body)?,
        visibility: parse_visibility(comment.visibility)?,
        author_id: crate::domain::text::check_identifier(
            "author_id",
            &comment.author_id,
            255,
            false,
        )
        .map(|()| comment.author_id)?,
        create_time: optional_time("create_time", comment.create_time)?,
    })
}

fn optional_time(
    field: &str,
    time: Option<prost_types::Timestamp>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    time.map(|time| time_from_proto(field, time)).transpose()
}
