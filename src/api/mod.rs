//! gRPC services: one module per service converting proto ⇄ domain, calling the store, and converting back.
//! Shared request plumbing (timestamps, field masks, page tokens, request ids) lives here.

pub mod agents;
pub mod associations;
pub mod caller;
pub mod cards;
pub mod codec;
pub mod error;
pub mod escalation;
pub mod heartbeat;
pub mod message_size;
pub mod pipelines;
pub mod portals;
pub mod properties;
pub mod rules;
pub mod tickets;
pub mod webhooks;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use prost::Message;
use prost_types::{FieldMask, Timestamp};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::{
    auth::Principal,
    domain::{
        Error, Origin, RequestKey,
        access::{Judgement, TicketScope},
        event::{Notify, SideEffects},
    },
    proto,
    store::Store,
};

/// Longest accepted `request_id`; a UUID needs 36.
const REQUEST_ID_MAX_CHARS: usize = 255;

/// A mutation that may carry a `request_id` (AIP-155).
pub(crate) trait IdempotentRequest: Message + Clone {
    /// The RPC's full name, so one id cannot replay the answer of another method.
    const OPERATION: &'static str;
    /// The client's id, empty when none was sent.
    fn request_id(&self) -> &str;
    /// The request with its id cleared, whose encoding identifies "the same request".
    fn without_request_id(&self) -> Self;
    /// The side effects a ticket write chose ([`ticket_writes`]); `None` for every other request. Read by
    /// [`origin`], so no handler can forget them.
    fn side_effects(&self) -> Option<&proto::SideEffects>;
}

/// Implements [`IdempotentRequest`] for request messages with a `request_id` string field. Ticket writes
/// go through [`ticket_writes`] instead.
macro_rules! idempotent_requests {
    // First: a `ty` fragment that fails to parse would end the match instead of trying the next rule.
    (@one $request:ty => $operation:literal, |$this:ident| $side_effects:expr) => {
        impl $crate::api::IdempotentRequest for $request {
            const OPERATION: &'static str = $operation;
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn without_request_id(&self) -> Self {
                Self { request_id: String::new(), ..self.clone() }
            }
            fn side_effects(&self) -> Option<&$crate::proto::SideEffects> {
                let $this = self;
                $side_effects
            }
        }
    };
    ($($request:ty => $operation:literal),* $(,)?) => {$(
        $crate::api::idempotent_requests!(@one $request => $operation, |_request| None);
    )*};
}
pub(crate) use idempotent_requests;

/// Implements [`IdempotentRequest`] for the ticket writes, whose `side_effects` field [`origin`] reads, and
/// lists their operations as `TICKET_WRITES` (a test holds the list to the protos: every method whose request
/// has `side_effects` is in it).
macro_rules! ticket_writes {
    ($($request:ty => $operation:literal),* $(,)?) => {
        $(
            $crate::api::idempotent_requests!(
                @one $request => $operation, |request| request.side_effects.as_ref()
            );
        )*
        /// Every RPC that writes tickets and takes `side_effects`.
        #[cfg(test)]
        pub(crate) const TICKET_WRITES: &[&str] = &[$($operation),*];
    };
}
pub(crate) use ticket_writes;

/// The request's idempotency key in `caller`'s namespace, or `None` when it carries no `request_id`.
fn request_key<R: IdempotentRequest>(
    caller: &str,
    request: &R,
) -> Result<Option<RequestKey>, Error> {
    let request_id = request.request_id();
    if request_id.is_empty() {
        return Ok(None);
    }
    if request_id.chars().count() > REQUEST_ID_MAX_CHARS || request_id.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "request_id",
            format!("must be at most {REQUEST_ID_MAX_CHARS} printable characters"),
        ));
    }
    // Maps are BTreeMaps (see build.rs), so equal requests encode to equal bytes.
    let digest = Sha256::digest(request.without_request_id().encode_to_vec());
    Ok(Some(RequestKey {
        caller: caller.to_owned(),
        request_id: request_id.to_owned(),
        operation: R::OPERATION,
        fingerprint: hex(&digest),
    }))
}

/// The authenticated caller, put in the request's extensions by the auth layer.
pub(crate) fn principal(extensions: &tonic::Extensions) -> Result<Principal, Error> {
    extensions
        .get::<Principal>()
        // Unreachable behind the auth layer, which every ticketd route sits behind.
        .cloned()
        .ok_or_else(|| Error::internal("a call reached a handler without passing the auth layer"))
}

/// Who is asking (the authenticated caller), the request's idempotency key, scoped to that caller, and the
/// side effects a ticket write asks for (checked against what the caller may ask).
pub(crate) fn origin<R: IdempotentRequest>(
    extensions: &tonic::Extensions,
    request: &R,
) -> Result<Origin, Error> {
    let caller = principal(extensions)?;
    let side_effects = match request.side_effects() {
        None => SideEffects::default(),
        Some(asked) => {
            let asked = side_effects_from_proto(asked)?;
            caller::viewer(extensions)?.check_side_effects(asked)?;
            asked
        }
    };
    let request = request_key(&caller.request_namespace(), request)?;
    Ok(Origin {
        actor_id: caller.id,
        request,
        side_effects,
    })
}

/// A client's timestamp as a time, to the microsecond the stores keep; errors name `field`.
pub(crate) fn time_from_proto(field: &str, time: Timestamp) -> Result<DateTime<Utc>, Error> {
    let nanos = u32::try_from(time.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000);
    nanos
        .and_then(|nanos| DateTime::from_timestamp(time.seconds, nanos - nanos % 1_000))
        // The years the stores and RFC 3339 both write with four digits.
        .filter(|parsed| (1..=9999).contains(&chrono::Datelike::year(parsed)))
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "{}s {}ns is not a time between the years 1 and 9999",
                    time.seconds, time.nanos
                ),
            )
        })
}

pub(crate) fn side_effects_from_proto(asked: &proto::SideEffects) -> Result<SideEffects, Error> {
    let notify = match proto::Notify::try_from(asked.notify) {
        Ok(proto::Notify::Unspecified) => Notify::Unspecified,
        Ok(proto::Notify::All) => Notify::All,
        Ok(proto::Notify::None) => Notify::None,
        Err(_) => {
            return Err(Error::invalid(
                "side_effects.notify",
                format!("{} is not a Notify value", asked.notify),
            ));
        }
    };
    Ok(SideEffects {
        notify,
        skip_automations: asked.skip_automations,
    })
}

/// The proto form of a recorded event's side effects.
pub(crate) fn side_effects_to_proto(side_effects: SideEffects) -> proto::SideEffects {
    let notify = match side_effects.notify {
        Notify::Unspecified => proto::Notify::Unspecified,
        Notify::All => proto::Notify::All,
        Notify::None => proto::Notify::None,
    };
    proto::SideEffects {
        notify: notify.into(),
        skip_automations: side_effects.skip_automations,
    }
}

/// Names the addressed ticket on the call's span, so traces and logs of one ticket can be found.
pub(crate) fn record_ticket_id(id: i64) {
    tracing::Span::current().record("ticket.id", id);
}

/// The status a stream ends with when it cannot continue: UNAVAILABLE, resumable from the trailer.
pub(crate) fn watch_end_status(resume_after: i64, reason: &str) -> tonic::Status {
    let mut status = tonic::Status::unavailable(format!(
        "{reason}; reconnect with after_event_id = {resume_after}"
    ));
    if let Ok(value) = resume_after.to_string().parse() {
        status
            .metadata_mut()
            .insert(crate::events::RESUME_TRAILER, value);
    }
    status
}

/// Whether a customer still sees the ticket of a stream item (an agent may unfollow a ticket for it
/// mid-stream): judged from the item's snapshot where that suffices, else asked of the database. A database
/// failure ends the stream so that it resumes at `resume_after`, which re-judges this item.
pub(crate) async fn stream_visibility(
    store: &Store,
    scope: &TicketScope,
    ticket_id: i64,
    snapshot: Option<&crate::domain::ticket::Ticket>,
    resume_after: i64,
) -> Result<bool, tonic::Status> {
    match scope.judge_snapshot(snapshot) {
        Judgement::Shown => Ok(true),
        Judgement::Hidden => Ok(false),
        Judgement::AskDatabase => store
            .ticket_visible(scope, ticket_id)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "checking a customer's stream item failed; ending the stream");
                watch_end_status(resume_after, "the database could not be reached")
            }),
    }
}

/// Refuses an empty batch or one over the limit; `field` names the list.
pub(crate) fn check_batch_size(field: &str, len: usize) -> Result<(), Error> {
    let max = crate::domain::commands::MAX_BATCH;
    if len == 0 || len > max {
        return Err(Error::invalid(
            field,
            format!("a batch takes 1 to {max} items, got {len}"),
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A time as a protobuf timestamp.
pub(crate) fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        // Always within 0..1e9, so the cast cannot truncate.
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// The paths an update applies: the mask's own, or with an empty mask (AIP-134) the fields the request sets.
pub(crate) fn update_paths(
    mask: Option<FieldMask>,
    fields_set: impl FnOnce() -> Vec<&'static str>,
) -> Vec<String> {
    match mask {
        Some(mask) if !mask.paths.is_empty() => mask.paths,
        _ => fields_set().into_iter().map(str::to_owned).collect(),
    }
}

/// The error for a mask path the resource does not have or does not let clients write.
pub(crate) fn bad_mask_path(path: &str, output_only: &[&str], updatable: &[&str]) -> Error {
    let description = if output_only.contains(&path) {
        format!("path {path:?} is output only")
    } else {
        format!(
            "unknown path {path:?}; updatable paths are {}",
            updatable.join(", ")
        )
    };
    Error::invalid("update_mask", description)
}

/// What a page token carries: which query it belongs to and where the previous page ended.
#[derive(Serialize, Deserialize)]
struct PageToken<C> {
    /// Fingerprint of the query, so a token is refused by any other query.
    q: String,
    /// The cursor: the sort key and id of the last row returned.
    c: C,
}

/// Identifies one listing query (everything but page size and token) inside its page tokens.
pub(crate) fn query_fingerprint(description: &str) -> String {
    hex(&Sha256::digest(description.as_bytes())[..8])
}

/// Encodes where the next page starts.
pub(crate) fn encode_page_token<C: Serialize>(query: &str, cursor: Option<C>) -> String {
    let Some(cursor) = cursor else {
        return String::new();
    };
    let token = PageToken {
        q: query.to_owned(),
        c: cursor,
    };
    // Cursors are plain data (integers, strings): serialising them cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// Decodes a page token, refusing garbage and tokens issued for another query.
pub(crate) fn decode_page_token<C: DeserializeOwned>(
    query: &str,
    token: &str,
) -> Result<Option<C>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Error::invalid("page_token", "is not a token this server issued");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let token: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    // The server never issues a token holding U+0000, which a cursor would carry into SQL.
    crate::domain::text::check_json("page_token", "", &token).map_err(|_| invalid())?;
    let token: PageToken<C> = serde_json::from_value(token).map_err(|_| invalid())?;
    if token.q != query {
        return Err(Error::invalid(
            "page_token",
            "was issued for a different query; keep order_by and filters the same while paging",
        ));
    }
    Ok(Some(token.c))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost_types::FileDescriptorSet;

    use super::*;

    /// A ticket write left out of `ticket_writes!` would take `side_effects` and silently ignore them.
    #[test]
    fn every_method_taking_side_effects_is_a_ticket_write() {
        let descriptors = FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the build script writes a valid descriptor set");
        let mut takes_side_effects = BTreeSet::new();
        for file in &descriptors.file {
            for message in &file.message_type {
                if message.field.iter().any(|field| {
                    field.name() == "side_effects" && field.type_name() == ".ticketd.v1.SideEffects"
                }) {
                    takes_side_effects.insert(format!(".{}.{}", file.package(), message.name()));
                }
            }
        }
        let mut methods = BTreeSet::new();
        for file in &descriptors.file {
            for service in &file.service {
                for method in &service.method {
                    if takes_side_effects.contains(method.input_type()) {
                        methods.insert(format!(
                            "{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
        let listed: BTreeSet<String> = tickets::TICKET_WRITES
            .iter()
            .chain(escalation::TICKET_WRITES)
            .map(|operation| (*operation).to_owned())
            .collect();
        assert_eq!(listed, methods);
    }

    #[test]
    fn an_unknown_notify_names_the_field() {
        let asked = proto::SideEffects {
            notify: 7,
            skip_automations: false,
        };
        match side_effects_from_proto(&asked) {
            Err(Error::InvalidArgument { field, .. }) => assert_eq!(field, "side_effects.notify"),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }
}
