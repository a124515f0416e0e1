//! WatchTickets: the hub's events, filtered, and for customers re-judged and redacted one by one. Messages
//! are encoded here rather than by tonic, so that staff streams share one encoding per event (see
//! [`crate::events::SharedEvent`] and `route.rs`).

use std::{
    collections::HashSet,
    pin::Pin,
    sync::{Arc, LazyLock},
};

use bytes::Bytes;
use prost::Message;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;

use super::{TicketApi, mapping::event_to_proto};
use crate::{
    api::{heartbeat::Heartbeats, stream_visibility, watch_end_status},
    domain::{Error, access::Viewer, event::TicketEvent, field::TicketField},
    events::{SharedEvent, TicketFilter, WatchItem},
    proto,
    store::Store,
};

/// A WatchTickets stream of encoded `TicketEvent` messages.
pub(crate) type EncodedEvents = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// Every heartbeat is the same message.
static HEARTBEAT: LazyLock<Bytes> = LazyLock::new(|| {
    encode(proto::TicketEvent {
        heartbeat: true,
        ..Default::default()
    })
});

impl TicketApi {
    pub(super) async fn watch(
        &self,
        request: proto::WatchTicketsRequest,
        viewer: Arc<Viewer>,
    ) -> Result<EncodedEvents, Error> {
        if request.after_event_id < 0 {
            return Err(Error::invalid("after_event_id", "must not be negative"));
        }
        // Each field filter with the request field that sets it and the values it wants.
        let field_filters = [
            (
                "pipeline_id",
                TicketField::PipelineId,
                request
                    .pipeline_id_set
                    .then(|| request.pipeline_id.to_string())
                    .into_iter()
                    .collect::<HashSet<_>>(),
            ),
            (
                "stage_ids",
                TicketField::StageId,
                request.stage_ids.iter().map(i64::to_string).collect(),
            ),
            (
                "assignee_id",
                TicketField::AssigneeId,
                non_empty(request.assignee_id),
            ),
            (
                "organization_id",
                TicketField::OrganizationId,
                non_empty(request.organization_id),
            ),
        ];
        let mut filter = TicketFilter {
            ticket_ids: request.ticket_ids.into_iter().collect(),
            ..TicketFilter::default()
        };
        for (at, field, wanted) in field_filters {
            if wanted.is_empty() {
                continue;
            }
            viewer.check_filter(at, &field)?;
            filter.fields.insert(field, wanted);
        }
        let after = (request.after_event_id > 0).then_some(request.after_event_id);
        let watch = self.hub.watch_tickets(filter, after).await?;
        let events: EncodedEvents = if viewer.customer().is_none() {
            // No future per item: a staff stream holds nothing between two events but the watch itself.
            Box::pin(watch.map(|item| match item {
                WatchItem::Item(event) => Ok(event.staff_encoding(encode_for_staff)),
                WatchItem::End {
                    resume_after,
                    reason,
                } => Err(watch_end_status(resume_after, reason)),
            }))
        } else {
            let store = self.store.clone();
            Box::pin(
                watch
                    .then(move |item| customer_item(store.clone(), Arc::clone(&viewer), item))
                    .filter_map(|item| item),
            )
        };
        Ok(Box::pin(Heartbeats::new(
            events,
            self.hub.heartbeat(),
            || HEARTBEAT.clone(),
        )))
    }
}

/// A customer's message for `item`, if the customer still sees its ticket and any of the change.
async fn customer_item(
    store: Store,
    viewer: Arc<Viewer>,
    item: WatchItem<Arc<SharedEvent>>,
) -> Option<Result<Bytes, Status>> {
    let event = match item {
        WatchItem::Item(event) => event,
        WatchItem::End {
            resume_after,
            reason,
        } => return Some(Err(watch_end_status(resume_after, reason))),
    };
    let Some(view) = viewer.customer() else {
        return Some(Ok(event.staff_encoding(encode_for_staff)));
    };
    let shown = stream_visibility(
        &store,
        &view.scope,
        event.ticket_id,
        event.ticket.as_ref(),
        event.event_id - 1,
    )
    .await;
    match shown {
        Ok(true) => view
            .redact_event(TicketEvent::clone(&event))
            .map(|event| Ok(encode(event_to_proto(event, true)))),
        Ok(false) => None,
        Err(status) => Some(Err(status)),
    }
}

/// The message every staff stream sends for `event`.
fn encode_for_staff(event: &TicketEvent) -> Bytes {
    encode(event_to_proto(event.clone(), true))
}

fn encode(event: proto::TicketEvent) -> Bytes {
    event.encode_to_vec().into()
}

fn non_empty(value: String) -> HashSet<String> {
    (!value.is_empty()).then_some(value).into_iter().collect()
}
