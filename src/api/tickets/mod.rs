//! `ticketd.v1.TicketService`: the trait impl converts and delegates; the files beside it hold the mapping
//! (proto ⇄ domain), search, watch, followers and time entries.

mod followers;
mod import;
mod mapping;
mod route;
mod search;
mod time_entries;
mod watch;

use std::{pin::Pin, sync::Arc};

use prost::Message;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::{
    caller::viewer, check_batch_size, decode_page_token, encode_page_token, idempotent_requests,
    origin, query_fingerprint, record_ticket_id, ticket_writes,
};
use crate::{
    domain::{
        comment::parse_body,
        page::{Cursor, page_size},
        queries::TicketListQuery,
    },
    events::EventHub,
    proto::{self, ticket_service_server::TicketService},
    store::Store,
};

use mapping::{
    comment_to_proto, new_ticket_from_proto, parse_order_by, parse_visibility, tickets_to_proto,
    update_from_proto,
};
pub(crate) use mapping::{draft_from_proto, event_to_proto, ticket_to_proto};
pub use route::TicketRoutes;

ticket_writes! {
    proto::CreateTicketRequest => "ticketd.v1.TicketService/CreateTicket",
    proto::UpdateTicketRequest => "ticketd.v1.TicketService/UpdateTicket",
    proto::ArchiveTicketRequest => "ticketd.v1.TicketService/ArchiveTicket",
    proto::RestoreTicketRequest => "ticketd.v1.TicketService/RestoreTicket",
    proto::BatchCreateTicketsRequest => "ticketd.v1.TicketService/BatchCreateTickets",
    proto::BatchUpdateTicketsRequest => "ticketd.v1.TicketService/BatchUpdateTickets",
    proto::BatchArchiveTicketsRequest => "ticketd.v1.TicketService/BatchArchiveTickets",
    proto::AddCommentRequest => "ticketd.v1.TicketService/AddComment",
}

idempotent_requests! {
    proto::LogTimeRequest => "ticketd.v1.TicketService/LogTime",
}

/// Serves tickets from the store and streams their events through the hub.
pub struct TicketApi {
    store: Store,
    hub: Arc<EventHub>,
}

impl TicketApi {
    /// A service over `store`, streaming through `hub`.
    pub fn new(store: Store, hub: Arc<EventHub>) -> Self {
        Self { store, hub }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::TicketEvent, Status>> + Send>>;

#[tonic::async_trait]
impl TicketService for TicketApi {
    async fn create_ticket(
        &self,
        request: Request<proto::CreateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = viewer(request.extensions())?;
        let mut new = new_ticket_from_proto(request.into_inner())?;
        viewer.prepare_new_ticket(&mut new)?;
        let created = self.store.create_ticket(new, &origin).await?;
        Ok(Response::new(ticket_to_proto(viewer.redact(created))))
    }

    async fn get_ticket(
        &self,
        request: Request<proto::GetTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let viewer = viewer(request.extensions())?;
        let id = request.into_inner().id;
        record_ticket_id(id);
        let ticket = self.store.get_ticket(id, viewer.scope()).await?;
        Ok(Response::new(ticket_to_proto(viewer.redact(ticket))))
    }

    async fn list_tickets(
        &self,
        request: Request<proto::ListTicketsRequest>,
    ) -> Result<Response<proto::ListTicketsResponse>, Status> {
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let order = parse_order_by(&request.order_by)?;
        let query = query_fingerprint(&format!(
            "tickets order={:?} desc={} archived={}",
            order.field, order.descending, request.show_archived
        ));
        let after = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_tickets(&TicketListQuery {
                order,
                show_archived: request.show_archived,
                page_size,
                after,
                filter_groups: Vec::new(),
                words: Vec::new(),
                scope: viewer.scope().cloned(),
            })
            .await?;
        Ok(Response::new(proto::ListTicketsResponse {
            tickets: tickets_to_proto(&viewer, page.items),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_ticket(
        &self,
        request: Request<proto::UpdateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = viewer(request.extensions())?;
        let update = update_from_proto(request.into_inner())?;
        record_ticket_id(update.id);
        viewer.check_update(&update.changes)?;
        let updated = self
            .store
            .update_ticket(
                update.id,
                &update.etag,
                update.changes,
                viewer.scope(),
                &origin,
            )
            .await
            .map_err(|error| error.within("ticket"))?;
        Ok(Response::new(ticket_to_proto(viewer.redact(updated))))
    }

    async fn archive_ticket(
        &self,
        request: Request<proto::ArchiveTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        record_ticket_id(request.id);
        let archived = self
            .store
            .archive_ticket(request.id, &request.etag, &origin)
            .await?;
        Ok(Response::new(ticket_to_proto(archived)))
    }

    async fn search_tickets(
        &self,
        request: Request<proto::SearchTicketsRequest>,
    ) -> Result<Response<proto::SearchTicketsResponse>, Status> {
        let viewer = viewer(request.extensions())?;
        Ok(Response::new(
            self.search(request.into_inner(), &viewer).await?,
        ))
    }

    async fn batch_create_tickets(
        &self,
        request: Request<proto::BatchCreateTicketsRequest>,
    ) -> Result<Response<proto::BatchCreateTicketsResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        check_batch_size("requests", request.requests.len())?;
        let tickets = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                new_ticket_from_proto(item)
                    .and_then(|mut new| viewer.prepare_new_ticket(&mut new).map(|()| new))
                    .map_err(|error| error.in_batch("requests", index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let created = self.store.batch_create_tickets(tickets, &origin).await?;
        Ok(Response::new(proto::BatchCreateTicketsResponse {
            tickets: tickets_to_proto(&viewer, created),
        }))
    }

    async fn batch_get_tickets(
        &self,
        request: Request<proto::BatchGetTicketsRequest>,
    ) -> Result<Response<proto::BatchGetTicketsResponse>, Status> {
        let viewer = viewer(request.extensions())?;
        let ids = request.into_inner().ids;
        check_batch_size("ids", ids.len())?;
        let tickets = self.store.batch_get_tickets(&ids, viewer.scope()).await?;
        Ok(Response::new(proto::BatchGetTicketsResponse {
            tickets: tickets_to_proto(&viewer, tickets),
        }))
    }

    async fn batch_update_tickets(
        &self,
        request: Request<proto::BatchUpdateTicketsRequest>,
    ) -> Result<Response<proto::BatchUpdateTicketsResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        check_batch_size("requests", request.requests.len())?;
        let updates = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                update_from_proto(item)
                    .and_then(|update| viewer.check_update(&update.changes).map(|()| update))
                    .map_err(|error| error.in_batch("requests", index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let updated = self
            .store
            .batch_update_tickets(updates, viewer.scope(), &origin)
            .await?;
        Ok(Response::new(proto::BatchUpdateTicketsResponse {
            tickets: tickets_to_proto(&viewer, updated),
        }))
    }

    async fn batch_archive_tickets(
        &self,
        request: Request<proto::BatchArchiveTicketsRequest>,
    ) -> Result<Response<proto::BatchArchiveTicketsResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        check_batch_size("requests", request.requests.len())?;
        let items = request
            .requests
            .into_iter()
            .map(|item| (item.id, item.etag))
            .collect();
        let archived = self.store.batch_archive_tickets(items, &origin).await?;
        Ok(Response::new(proto::BatchArchiveTicketsResponse {
            tickets: archived.into_iter().map(ticket_to_proto).collect(),
        }))
    }

    async fn add_comment(
        &self,
        request: Request<proto::AddCommentRequest>,
    ) -> Result<Response<proto::Comment>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        record_ticket_id(request.ticket_id);
        let body = parse_body(request.body)?;
        let visibility = parse_visibility(request.visibility)?;
        viewer.check_comment(visibility)?;
        let comment = self
            .store
            .add_comment(request.ticket_id, body, visibility, viewer.scope(), &origin)
            .await?;
        Ok(Response::new(comment_to_proto(comment)))
    }

    async fn list_comments(
        &self,
        request: Request<proto::ListCommentsRequest>,
    ) -> Result<Response<proto::ListCommentsResponse>, Status> {
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        record_ticket_id(request.ticket_id);
        let query = query_fingerprint(&format!("comments ticket={}", request.ticket_id));
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_comments(request.ticket_id, viewer.scope(), page_size, after)
            .await?;
        Ok(Response::new(proto::ListCommentsResponse {
            comments: page.items.into_iter().map(comment_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn list_ticket_history(
        &self,
        request: Request<proto::ListTicketHistoryRequest>,
    ) -> Result<Response<proto::ListTicketHistoryResponse>, Status> {
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        record_ticket_id(request.ticket_id);
        let query = query_fingerprint(&format!("history ticket={}", request.ticket_id));
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_history(request.ticket_id, viewer.scope(), page_size, after)
            .await?;
        // A customer's page may hold fewer events than asked (hidden ones are left out); the token still
        // continues after the last event read, so nothing is skipped.
        Ok(Response::new(proto::ListTicketHistoryResponse {
            events: page
                .items
                .into_iter()
                .filter_map(|event| viewer.redact_event(event))
                .map(|event| event_to_proto(event, false))
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    type WatchTicketsStream = EventStream;
    type ImportTicketsStream = import::ImportStream;

    async fn import_tickets(
        &self,
        request: Request<tonic::Streaming<proto::ImportTicketsRequest>>,
    ) -> Result<Response<Self::ImportTicketsStream>, Status> {
        Ok(Response::new(self.import(request).await?))
    }

    async fn watch_tickets(
        &self,
        request: Request<proto::WatchTicketsRequest>,
    ) -> Result<Response<Self::WatchTicketsStream>, Status> {
        // Served by `route.rs` in ticketd; this answers the same messages should the generated server be
        // served alone, decoding what the route would send as it is.
        let encoded = self.watch_encoded(request).await?;
        Ok(Response::new(Box::pin(encoded.map(|message| {
            message.and_then(|bytes| {
                proto::TicketEvent::decode(bytes)
                    .map_err(|error| Status::internal(format!("re-decoding an event: {error}")))
            })
        }))))
    }

    async fn restore_ticket(
        &self,
        request: Request<proto::RestoreTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        record_ticket_id(request.get_ref().id);
        let restored = self
            .store
            .restore_ticket(request.get_ref().id, &origin)
            .await?;
        Ok(Response::new(ticket_to_proto(restored)))
    }

    async fn follow_ticket(
        &self,
        request: Request<proto::FollowTicketRequest>,
    ) -> Result<Response<proto::Follower>, Status> {
        Ok(Response::new(self.follow(request).await?))
    }

    async fn unfollow_ticket(
        &self,
        request: Request<proto::UnfollowTicketRequest>,
    ) -> Result<Response<proto::UnfollowTicketResponse>, Status> {
        Ok(Response::new(self.unfollow(request).await?))
    }

    async fn list_followers(
        &self,
        request: Request<proto::ListFollowersRequest>,
    ) -> Result<Response<proto::ListFollowersResponse>, Status> {
        Ok(Response::new(self.followers(request).await?))
    }

    async fn follow_project(
        &self,
        request: Request<proto::FollowProjectRequest>,
    ) -> Result<Response<proto::ProjectFollower>, Status> {
        Ok(Response::new(
            self.add_project_follower(request.into_inner()).await?,
        ))
    }

    async fn unfollow_project(
        &self,
        request: Request<proto::UnfollowProjectRequest>,
    ) -> Result<Response<proto::UnfollowProjectResponse>, Status> {
        Ok(Response::new(
            self.remove_project_follower(request.into_inner()).await?,
        ))
    }

    async fn list_project_followers(
        &self,
        request: Request<proto::ListProjectFollowersRequest>,
    ) -> Result<Response<proto::ListProjectFollowersResponse>, Status> {
        Ok(Response::new(
            self.project_followers(request.into_inner()).await?,
        ))
    }

    async fn log_time(
        &self,
        request: Request<proto::LogTimeRequest>,
    ) -> Result<Response<proto::TimeEntry>, Status> {
        Ok(Response::new(self.log(request).await?))
    }

    async fn list_time_entries(
        &self,
        request: Request<proto::ListTimeEntriesRequest>,
    ) -> Result<Response<proto::ListTimeEntriesResponse>, Status> {
        Ok(Response::new(self.time_entries(request).await?))
    }

    async fn delete_time_entry(
        &self,
        request: Request<proto::DeleteTimeEntryRequest>,
    ) -> Result<Response<proto::DeleteTimeEntryResponse>, Status> {
        Ok(Response::new(self.delete_entry(request).await?))
    }
}
