//! `ticketd.v1.EscalationService`: chat conversations handed over to the desk.

use tonic::{Request, Response, Status};

use super::{
    origin, record_ticket_id, ticket_writes,
    tickets::{draft_from_proto, ticket_to_proto},
    time_from_proto,
};
use crate::{
    domain::{
        Error, Origin,
        agent::check_email_at,
        commands::NewTicket,
        escalation::{
            AUTHOR_NAME_MAX_CHARS, Assignment, AuthorKind, CONVERSATION_ID_MAX_CHARS, Escalation,
            EscalationMode, MESSAGE_TEXT_MAX_CHARS, Requester, TRANSCRIPT_MAX_MESSAGES,
            TranscriptMessage, check_source,
        },
        text::check_identifier,
    },
    proto::{self, escalation_service_server::EscalationService},
    store::Store,
};

ticket_writes! {
    proto::EscalateConversationRequest => "ticketd.v1.EscalationService/EscalateConversation",
}

/// Longest requester name.
const REQUESTER_NAME_MAX_CHARS: usize = 200;

/// Serves escalations from the store.
pub struct EscalationApi {
    store: Store,
}

impl EscalationApi {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl EscalationService for EscalationApi {
    async fn escalate_conversation(
        &self,
        request: Request<proto::EscalateConversationRequest>,
    ) -> Result<Response<proto::EscalateConversationResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let escalation = escalation_from_proto(request.into_inner(), &origin)?;
        let escalated = self
            .store
            .escalate_conversation(&escalation, &origin)
            .await?;
        record_ticket_id(escalated.ticket.id);
        let assignment = match escalated.assignment {
            Assignment::Explicit => proto::Assignment::Explicit,
            Assignment::MatchedAgent => proto::Assignment::MatchedAgent,
            Assignment::NoAgentWithEmail => proto::Assignment::NoAgentWithEmail,
            Assignment::AgentInactive => proto::Assignment::AgentInactive,
            Assignment::Unchanged => proto::Assignment::Unchanged,
        };
        Ok(Response::new(proto::EscalateConversationResponse {
            ticket: Some(ticket_to_proto(escalated.ticket)),
            created: escalated.created,
            assignment: assignment.into(),
            messages_added: i32::try_from(escalated.messages_added).unwrap_or(i32::MAX),
        }))
    }

    async fn get_conversation_ticket(
        &self,
        request: Request<proto::GetConversationTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let request = request.into_inner();
        check_source("source", &request.source)?;
        check_identifier(
            "conversation_id",
            &request.conversation_id,
            CONVERSATION_ID_MAX_CHARS,
            true,
        )?;
        let ticket = self
            .store
            .conversation_ticket(&request.source, &request.conversation_id)
            .await?;
        record_ticket_id(ticket.id);
        Ok(Response::new(ticket_to_proto(ticket)))
    }
}

/// Checks a hand-over whole before anything is written; errors name the field.
fn escalation_from_proto(
    request: proto::EscalateConversationRequest,
    origin: &Origin,
) -> Result<Escalation, Error> {
    check_source("source", &request.source)?;
    check_identifier(
        "conversation_id",
        &request.conversation_id,
        CONVERSATION_ID_MAX_CHARS,
        true,
    )?;
    let mode = match proto::EscalationMode::try_from(request.mode) {
        Ok(proto::EscalationMode::Open) => EscalationMode::Open,
        Ok(proto::EscalationMode::Archive) => EscalationMode::Archive,
        Ok(proto::EscalationMode::Unspecified) => {
            return Err(Error::invalid(
                "mode",
                "is required: ESCALATION_MODE_OPEN or ESCALATION_MODE_ARCHIVE",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(
                "mode",
                format!("{} is not an EscalationMode", request.mode),
            ));
        }
    };
    let ticket = request
        .ticket
        .ok_or_else(|| Error::invalid("ticket", "is required"))?;
    let draft = draft_from_proto(ticket).map_err(|error| error.within("ticket"))?;
    let requester = requester_from_proto(request.requester.unwrap_or_default())?;
    if !request.agent_email.is_empty() {
        check_email_at("agent_email", &request.agent_email)?;
    }
    if request.transcript.len() > TRANSCRIPT_MAX_MESSAGES {
        return Err(Error::invalid(
            "transcript",
            format!(
                "{} messages; at most {TRANSCRIPT_MAX_MESSAGES} per call (send a long chat in several calls)",
                request.transcript.len()
            ),
        ));
    }
    let transcript = request
        .transcript
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            message_from_proto(message)
                .map_err(|error| error.within(&format!("transcript[{index}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Escalation {
        source: request.source,
        conversation_id: request.conversation_id,
        mode,
        ticket: NewTicket {
            draft,
            associations: Vec::new(),
        },
        requester,
        agent_email: request.agent_email,
        transcript,
        side_effects: origin.side_effects,
    })
}

fn requester_from_proto(requester: proto::Requester) -> Result<Requester, Error> {
    check_identifier("requester.id", &requester.id, 255, false)?;
    if !requester.email.is_empty() {
        check_email_at("requester.email", &requester.email)?;
    }
    check_identifier(
        "requester.name",
        &requester.name,
        REQUESTER_NAME_MAX_CHARS,
        false,
    )?;
    Ok(Requester {
        id: requester.id,
        email: requester.email,
        name: requester.name,
    })
}

fn message_from_proto(message: proto::ConversationMessage) -> Result<TranscriptMessage, Error> {
    check_identifier(
        "message_id",
        &message.message_id,
        CONVERSATION_ID_MAX_CHARS,
        false,
    )?;
    let author_kind = match proto::AuthorKind::try_from(message.author_kind) {
        Ok(proto::AuthorKind::Visitor) => AuthorKind::Visitor,
        Ok(proto::AuthorKind::Agent) => AuthorKind::Agent,
        Ok(proto::AuthorKind::Bot) => AuthorKind::Bot,
        Ok(proto::AuthorKind::System) => AuthorKind::System,
        Ok(proto::AuthorKind::Unspecified) => {
            return Err(Error::invalid(
                "author_kind",
                "is required: VISITOR, AGENT, BOT or SYSTEM",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(
                "author_kind",
                format!("{} is not an AuthorKind", message.author_kind),
            ));
        }
    };
    check_identifier(
        "author_name",
        &message.author_name,
        AUTHOR_NAME_MAX_CHARS,
        false,
    )?;
    if message.text.trim().is_empty() {
        return Err(Error::invalid("text", "is required"));
    }
    let chars = message.text.chars().count();
    if chars > MESSAGE_TEXT_MAX_CHARS {
        return Err(Error::invalid(
            "text",
            format!("{chars} characters; at most {MESSAGE_TEXT_MAX_CHARS}"),
        ));
    }
    let sent_time = message
        .sent_time
        .ok_or_else(|| Error::invalid("sent_time", "is required"))
        .and_then(|time| time_from_proto("sent_time", time))?;
    Ok(TranscriptMessage {
        message_id: message.message_id,
        author_kind,
        author_name: message.author_name,
        text: message.text,
        sent_time,
    })
}
