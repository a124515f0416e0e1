//! Escalated conversations: one ticket per `(source, conversation_id)`, its follow-ups, and the transcript
//! messages already noted.
//!
//! Exactly-once rests on primary keys, not on reading first (see the migration
//! `m20261129_000010_conversations`): an escalation that loses a race to create a conversation's ticket fails
//! on the key after the winner commits, and the whole transaction, ticket included, is rerun; the rerun finds
//! the winner's ticket and only appends messages. The cost is a ticket id (and its event ids) burnt per lost
//! race, which readers never see since those rows never commit.

use std::collections::{BTreeMap, HashSet};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TryInsertResult,
};

use super::{
    Store, WriteTxn, agents,
    comments::insert_comment,
    entities::{association_type, conversation_message, conversation_ticket},
    is_unique_violation, properties,
    tickets::{existing_pipeline, insert_ticket_at, lock_ticket},
};
use crate::domain::{
    Error, Origin,
    association::{AssociationSpec, ObjectRef, TICKET_OBJECT_TYPE},
    commands::{HistoricalTimes, NewTicket},
    comment::Visibility,
    escalation::{
        Assignment, CONVERSATION_OBJECT_TYPE, Escalated, Escalation, EscalationMode,
        FOLLOW_UP_LABEL, TranscriptMessage, transcript_note,
    },
    event::SideEffects,
    now,
    pipeline::{DEFAULT_PIPELINE_ID, TicketState},
    property::{PropertyDefinition, fill_required_defaults, normalize_properties},
    ticket::Ticket,
};

/// How often an escalation that lost a race is rerun before the client is told to retry. Each rerun finds the
/// winner's rows, so a second loss needs a third writer creating a follow-up at that very moment.
const CONTENDED_ATTEMPTS: usize = 4;

impl Store {
    /// Creates or finds the conversation's ticket and notes the transcript messages not seen before.
    pub async fn escalate_conversation(
        &self,
        escalation: &Escalation,
        origin: &Origin,
    ) -> Result<Escalated, Error> {
        let mut attempt = 1;
        loop {
            let outcome = self
                .write(origin.request.as_ref(), async |txn| {
                    escalate(txn, escalation, origin).await
                })
                .await;
            match outcome {
                Err(Error::Contended(reason)) if attempt < CONTENDED_ATTEMPTS => {
                    tracing::debug!(%reason, attempt, "escalation lost a race; rerunning");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// The conversation's latest ticket: its last follow-up, or the first ticket.
    pub async fn conversation_ticket(
        &self,
        source: &str,
        conversation_id: &str,
    ) -> Result<Ticket, Error> {
        let latest = latest_ticket_row(&self.db, source, conversation_id)
            .await?
            .ok_or_else(|| {
                Error::not_found("conversation", format!("{source}:{conversation_id}"))
            })?;
        self.get_ticket(latest.ticket_id, None).await
    }
}

async fn escalate(
    txn: &WriteTxn,
    escalation: &Escalation,
    origin: &Origin,
) -> Result<Escalated, Error> {
    let unseen = unseen_messages(txn, escalation).await?;
    let latest = latest_ticket_row(&**txn, &escalation.source, &escalation.conversation_id).await?;
    let (ticket, created, assignment, sequence) = match latest {
        None => {
            let (ticket, assignment) = create_ticket(txn, escalation, origin, None).await?;
            (ticket, true, assignment, 0)
        }
        Some(row) => {
            let existing = lock_ticket(txn, row.ticket_id).await?;
            // A chat that comes back after its ticket was solved gets a new ticket rather than silently
            // reopening the solved one; a resent call with nothing new is a repeat, not a comeback.
            let comes_back = escalation.mode == EscalationMode::Open
                && (existing.close_time.is_some() || existing.archived())
                && !unseen.is_empty();
            if comes_back {
                let (ticket, assignment) =
                    create_ticket(txn, escalation, origin, Some(existing.id)).await?;
                (ticket, true, assignment, row.sequence + 1)
            } else {
                (existing, false, Assignment::Unchanged, row.sequence)
            }
        }
    };
    if created {
        claim_sequence(txn, escalation, sequence, ticket.id).await?;
    }
    let added = note_messages(
        txn,
        escalation,
        &ticket,
        &unseen,
        &effective_origin(escalation, origin),
    )
    .await?;
    Ok(Escalated {
        ticket,
        created,
        assignment,
        messages_added: added,
    })
}

/// The origin the escalation's writes are recorded with: a filed chat notifies nobody and runs no rules.
fn effective_origin(escalation: &Escalation, origin: &Origin) -> Origin {
    let side_effects = match escalation.mode {
        EscalationMode::Archive => SideEffects::SILENT,
        EscalationMode::Open => escalation.side_effects,
    };
    Origin {
        side_effects,
        ..origin.clone()
    }
}

/// Creates the conversation's ticket (or a follow-up of `follows`), linked to the conversation.
async fn create_ticket(
    txn: &WriteTxn,
    escalation: &Escalation,
    origin: &Origin,
    follows: Option<i64>,
) -> Result<(Ticket, Assignment), Error> {
    let definitions = properties::definitions_for_write(txn).await?;
    check_required_properties(&definitions, &escalation.ticket)?;
    let NewTicket {
        mut draft,
        mut associations,
    } = escalation.ticket.clone();
    if let Some(requester_id) = escalation.requester.requester_id() {
        draft.requester_id = requester_id;
    }
    let assignment = if draft.assignee_id.is_empty() {
        let (assignee, assignment) = match_agent(txn, &escalation.agent_email).await?;
        draft.assignee_id = assignee.unwrap_or_default();
        assignment
    } else {
        Assignment::Explicit
    };
    let pipeline_id = draft.pipeline_id.unwrap_or(DEFAULT_PIPELINE_ID);
    let pipeline = existing_pipeline(txn, pipeline_id)
        .await
        .map_err(|error| error.within("ticket"))?;
    let wanted_state = match escalation.mode {
        EscalationMode::Open => TicketState::Open,
        EscalationMode::Archive => TicketState::Closed,
    };
    let stage = match draft.stage_id {
        Some(stage_id) => {
            let stage = pipeline
                .place(Some(stage_id))
                .map_err(|error| error.within("ticket"))?;
            if stage.state != wanted_state {
                return Err(Error::invalid(
                    "ticket.stage_id",
                    format!(
                        "stage {stage_id} is {:?}, and this mode files the ticket in a {wanted_state:?} stage",
                        stage.state
                    ),
                ));
            }
            stage
        }
        None => pipeline
            .stages
            .iter()
            .find(|stage| stage.state == wanted_state)
            .ok_or_else(|| {
                Error::precondition(
                    "PIPELINE_HAS_NO_STAGE_FOR_MODE",
                    format!(
                        "pipeline {} ({}) has no {wanted_state:?} stage to file the conversation in",
                        pipeline.id, pipeline.label
                    ),
                )
            })?,
    };
    draft.pipeline_id = Some(pipeline.id);
    draft.stage_id = Some(stage.id);
    associations.push(AssociationSpec {
        to: ObjectRef {
            object_type: CONVERSATION_OBJECT_TYPE.to_owned(),
            object_id: escalation.object_id(),
        },
        association_type_id: None,
    });
    if let Some(previous) = follows {
        associations.push(AssociationSpec {
            to: ObjectRef {
                object_type: TICKET_OBJECT_TYPE.to_owned(),
                object_id: previous.to_string(),
            },
            association_type_id: Some(follow_up_type_id(txn).await?),
        });
    }
    // A filed chat closed when it ended, not when it was handed over.
    let times = HistoricalTimes {
        close_time: match escalation.mode {
            EscalationMode::Archive => escalation.last_sent_time(),
            EscalationMode::Open => None,
        },
        ..HistoricalTimes::default()
    };
    let ticket = insert_ticket_at(
        txn,
        &definitions,
        NewTicket {
            draft,
            associations,
        },
        &effective_origin(escalation, origin),
        &times,
    )
    .await?;
    Ok((ticket, assignment))
}

/// A hand-over must not fail on one missing field at a time: every required property without a value or a
/// default is named at once, before anything is written.
fn check_required_properties(
    definitions: &BTreeMap<String, PropertyDefinition>,
    ticket: &NewTicket,
) -> Result<(), Error> {
    let mut values = normalize_properties(definitions, ticket.draft.properties.clone())
        .map_err(|error| error.within("ticket"))?;
    let missing = fill_required_defaults(definitions, &mut values);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::precondition(
        "REQUIRED_PROPERTIES_MISSING",
        format!(
            "required properties without a value or a default: {}; set them in ticket.properties",
            missing.join(", ")
        ),
    ))
}

/// The active agent with this address, ignoring letter case, and how the choice came out.
async fn match_agent(txn: &WriteTxn, email: &str) -> Result<(Option<String>, Assignment), Error> {
    if email.is_empty() {
        return Ok((None, Assignment::NoAgentWithEmail));
    }
    Ok(match agents::agent_by_email(&**txn, email).await? {
        Some(agent) if agent.active => (Some(agent.id), Assignment::MatchedAgent),
        Some(_) => (None, Assignment::AgentInactive),
        None => (None, Assignment::NoAgentWithEmail),
    })
}

/// The ticket→ticket type linking a follow-up to what it follows (seeded by the conversations migration).
async fn follow_up_type_id(txn: &WriteTxn) -> Result<i64, Error> {
    association_type::Entity::find()
        .filter(association_type::Column::FromObjectType.eq(TICKET_OBJECT_TYPE))
        .filter(association_type::Column::ToObjectType.eq(TICKET_OBJECT_TYPE))
        .filter(association_type::Column::Label.eq(FOLLOW_UP_LABEL))
        .one(&**txn)
        .await?
        .map(|row| row.id)
        .ok_or_else(|| Error::internal("the follow_up_of association type is missing"))
}

async fn latest_ticket_row(
    db: &impl sea_orm::ConnectionTrait,
    source: &str,
    conversation_id: &str,
) -> Result<Option<conversation_ticket::Model>, Error> {
    Ok(conversation_ticket::Entity::find()
        .filter(conversation_ticket::Column::Source.eq(source))
        .filter(conversation_ticket::Column::ConversationId.eq(conversation_id))
        .order_by_desc(conversation_ticket::Column::Sequence)
        .one(db)
        .await?)
}

/// Records `ticket_id` as the conversation's ticket number `sequence`. A concurrent escalation that got there
/// first makes this fail on the key once it commits: the caller's transaction is then rerun.
async fn claim_sequence(
    txn: &WriteTxn,
    escalation: &Escalation,
    sequence: i32,
    ticket_id: i64,
) -> Result<(), Error> {
    let claimed = conversation_ticket::Entity::insert(conversation_ticket::ActiveModel {
        source: Set(escalation.source.clone()),
        conversation_id: Set(escalation.conversation_id.clone()),
        sequence: Set(sequence),
        ticket_id: Set(ticket_id),
        create_time: Set(now()),
    })
    .exec_without_returning(&**txn)
    .await;
    match claimed {
        Ok(_) => Ok(()),
        Err(error) if is_unique_violation(&error) => Err(Error::Contended(format!(
            "conversation {} got ticket number {sequence} from a concurrent escalation",
            escalation.object_id()
        ))),
        Err(error) => Err(error.into()),
    }
}

/// The call's messages not noted before, each once, in the order they were sent.
async fn unseen_messages<'a>(
    txn: &WriteTxn,
    escalation: &'a Escalation,
) -> Result<Vec<(&'a TranscriptMessage, String)>, Error> {
    let keyed: Vec<(&TranscriptMessage, String)> = escalation
        .transcript
        .iter()
        .map(|message| (message, message.key()))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    // Bounded by TRANSCRIPT_MAX_MESSAGES, well within both databases' parameter limits.
    for row in conversation_message::Entity::find()
        .filter(conversation_message::Column::Source.eq(&escalation.source))
        .filter(conversation_message::Column::ConversationId.eq(&escalation.conversation_id))
        .filter(
            conversation_message::Column::MessageKey
                .is_in(keyed.iter().map(|(_, key)| key.clone())),
        )
        .all(&**txn)
        .await?
    {
        seen.insert(row.message_key);
    }
    let mut unseen: Vec<(&TranscriptMessage, String)> = keyed
        .into_iter()
        .filter(|(_, key)| seen.insert(key.clone()))
        .collect();
    unseen.sort_by_key(|(message, _)| message.sent_time);
    Ok(unseen)
}

/// Notes the unseen messages on `ticket` as one INTERNAL comment, claiming each message's key so a racing call
/// cannot note it too. Returns how many were noted.
async fn note_messages(
    txn: &WriteTxn,
    escalation: &Escalation,
    ticket: &Ticket,
    unseen: &[(&TranscriptMessage, String)],
    origin: &Origin,
) -> Result<usize, Error> {
    let mut noted = Vec::with_capacity(unseen.len());
    for (message, key) in unseen {
        // ON CONFLICT DO NOTHING: a concurrent call noting the same message makes this wait for its commit,
        // then skip the message instead of failing.
        let inserted = conversation_message::Entity::insert(conversation_message::ActiveModel {
            source: Set(escalation.source.clone()),
            conversation_id: Set(escalation.conversation_id.clone()),
            message_key: Set(key.clone()),
            ticket_id: Set(ticket.id),
            create_time: Set(now()),
        })
        .on_conflict_do_nothing_on([
            conversation_message::Column::Source,
            conversation_message::Column::ConversationId,
            conversation_message::Column::MessageKey,
        ])
        .exec_without_returning(&**txn)
        .await?;
        if matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0) {
            noted.push(*message);
        }
    }
    if noted.is_empty() {
        return Ok(0);
    }
    let note = transcript_note(&escalation.source, &escalation.conversation_id, &noted);
    insert_comment(txn, ticket.id, note, Visibility::Internal, origin).await?;
    Ok(noted.len())
}
