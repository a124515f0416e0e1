//! WatchTickets: the hub's events, filtered, and for customers re-judged and redacted one by one.

use std::{collections::HashSet, sync::Arc};

use tokio_stream::StreamExt;

use super::{EventStream, TicketApi, mapping::event_to_proto};
use crate::{
    api::{heartbeat::Heartbeats, stream_visibility, watch_end_status},
    domain::{Error, access::Viewer, field::TicketField},
    events::{TicketFilter, WatchItem},
    proto,
};

impl TicketApi {
    pub(super) async fn watch(
        &self,
        request: proto::WatchTicketsRequest,
        viewer: Arc<Viewer>,
    ) -> Result<EventStream, Error> {
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
        let store = self.store.clone();
        let stream = watch
            .then(move |item| {
                let store = store.clone();
                let viewer = Arc::clone(&viewer);
                async move {
                    match item {
                        WatchItem::Item(event) => match viewer.customer() {
                            None => Some(Ok(event_to_proto((*event).clone(), true))),
                            Some(view) => {
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
                                        .redact_event((*event).clone())
                                        .map(|event| Ok(event_to_proto(event, true))),
                                    Ok(false) => None,
                                    Err(status) => Some(Err(status)),
                                }
                            }
                        },
                        WatchItem::End {
                            resume_after,
                            reason,
                        } => Some(Err(watch_end_status(resume_after, reason))),
                    }
                }
            })
            .filter_map(|item| item);
        let heartbeat = || proto::TicketEvent {
            heartbeat: true,
            ..Default::default()
        };
        Ok(Box::pin(Heartbeats::new(
            Box::pin(stream),
            self.hub.heartbeat(),
            heartbeat,
        )))
    }
}

fn non_empty(value: String) -> HashSet<String> {
    (!value.is_empty()).then_some(value).into_iter().collect()
}
