//! `ticketd.v1.TicketService`.

use tonic::{Request, Response, Status};

use std::{collections::HashSet, pin::Pin, sync::Arc};

use prost::Message;
use tokio_stream::{Stream, StreamExt};

use super::{
    associations::{association_to_proto, spec_from_proto},
    bad_mask_path, check_batch_size, decode_page_token, encode_page_token, idempotent_requests,
    origin, principal, query_fingerprint, record_ticket_id, timestamp, update_paths, viewer,
    watch_end_status,
};
use crate::{
    auth::{Principal, Role},
    domain::{
        Error,
        access::{CustomerView, Viewer},
        comment::{Comment, Visibility, parse_body},
        event::{EventDetail, EventKind, TicketEvent},
        follower::{FollowerKind, ProjectFollower, parse_id},
        page::{Cursor, page_size},
        search::{Operator, RawFilter, query_words},
        ticket::{
            self, Priority, Ticket, TicketChanges, TicketDraft, parse_content, parse_properties,
            parse_reference, parse_subject, parse_tags,
        },
        time_entry::{NewTimeEntry, TimeEntry},
    },
    events::{EventHub, TicketFilter, WatchItem},
    proto::{self, ticket_service_server::TicketService},
    store::{NewTicket, Store, TicketListQuery, TicketOrder, TicketOrderField, TicketUpdate},
};

idempotent_requests! {
    proto::CreateTicketRequest => "ticketd.v1.TicketService/CreateTicket",
    proto::UpdateTicketRequest => "ticketd.v1.TicketService/UpdateTicket",
    proto::ArchiveTicketRequest => "ticketd.v1.TicketService/ArchiveTicket",
    proto::RestoreTicketRequest => "ticketd.v1.TicketService/RestoreTicket",
    proto::BatchCreateTicketsRequest => "ticketd.v1.TicketService/BatchCreateTickets",
    proto::BatchUpdateTicketsRequest => "ticketd.v1.TicketService/BatchUpdateTickets",
    proto::BatchArchiveTicketsRequest => "ticketd.v1.TicketService/BatchArchiveTickets",
    proto::AddCommentRequest => "ticketd.v1.TicketService/AddComment",
    proto::LogTimeRequest => "ticketd.v1.TicketService/LogTime",
}

const UPDATABLE_PATHS: &[&str] = &[
    "subject",
    "content",
    "pipeline_id",
    "stage_id",
    "priority",
    "requester_id",
    "assignee_id",
    "organization_id",
    "ticket_type",
    "tags",
    "project_id",
    "properties",
    "properties.<name>",
];
const OUTPUT_ONLY_PATHS: &[&str] = &[
    "id",
    "create_time",
    "update_time",
    "close_time",
    "archive_time",
    "archived",
    "etag",
];

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
        let viewer = self.viewer(request.extensions()).await?;
        let mut new = new_ticket_from_proto(request.into_inner())?;
        prepare_new_ticket(&viewer, &mut new)?;
        let created = self.store.create_ticket(new, &origin).await?;
        Ok(Response::new(ticket_to_proto(viewer.redact(created))))
    }

    async fn get_ticket(
        &self,
        request: Request<proto::GetTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let viewer = self.viewer(request.extensions()).await?;
        let id = request.into_inner().id;
        record_ticket_id(id);
        let ticket = self.store.get_ticket(id, viewer.scope()).await?;
        Ok(Response::new(ticket_to_proto(viewer.redact(ticket))))
    }

    async fn list_tickets(
        &self,
        request: Request<proto::ListTicketsRequest>,
    ) -> Result<Response<proto::ListTicketsResponse>, Status> {
        let viewer = self.viewer(request.extensions()).await?;
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
            tickets: page
                .items
                .into_iter()
                .map(|ticket| ticket_to_proto(viewer.redact(ticket)))
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_ticket(
        &self,
        request: Request<proto::UpdateTicketRequest>,
    ) -> Result<Response<proto::Ticket>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = self.viewer(request.extensions()).await?;
        let update = update_from_proto(request.into_inner())?;
        record_ticket_id(update.id);
        if let Some(view) = viewer.customer() {
            view.check_changes(&update.changes)
                .map_err(|error| error.within("ticket"))?;
        }
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
        let viewer = self.viewer(request.extensions()).await?;
        Ok(Response::new(
            self.search(request.into_inner(), &viewer).await?,
        ))
    }

    async fn batch_create_tickets(
        &self,
        request: Request<proto::BatchCreateTicketsRequest>,
    ) -> Result<Response<proto::BatchCreateTicketsResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        check_batch_size("requests", request.requests.len())?;
        let tickets = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                new_ticket_from_proto(item)
                    .and_then(|mut new| prepare_new_ticket(&viewer, &mut new).map(|()| new))
                    .map_err(|error| error.in_batch("requests", index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let created = self.store.batch_create_tickets(tickets, &origin).await?;
        Ok(Response::new(proto::BatchCreateTicketsResponse {
            tickets: created
                .into_iter()
                .map(|ticket| ticket_to_proto(viewer.redact(ticket)))
                .collect(),
        }))
    }

    async fn batch_get_tickets(
        &self,
        request: Request<proto::BatchGetTicketsRequest>,
    ) -> Result<Response<proto::BatchGetTicketsResponse>, Status> {
        let viewer = self.viewer(request.extensions()).await?;
        let ids = request.into_inner().ids;
        check_batch_size("ids", ids.len())?;
        let tickets = self.store.batch_get_tickets(&ids, viewer.scope()).await?;
        Ok(Response::new(proto::BatchGetTicketsResponse {
            tickets: tickets
                .into_iter()
                .map(|ticket| ticket_to_proto(viewer.redact(ticket)))
                .collect(),
        }))
    }

    async fn batch_update_tickets(
        &self,
        request: Request<proto::BatchUpdateTicketsRequest>,
    ) -> Result<Response<proto::BatchUpdateTicketsResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        check_batch_size("requests", request.requests.len())?;
        let updates = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                update_from_proto(item)
                    .and_then(|update| match viewer.customer() {
                        None => Ok(update),
                        Some(view) => view
                            .check_changes(&update.changes)
                            .map(|()| update)
                            .map_err(|error| error.within("ticket")),
                    })
                    .map_err(|error| error.in_batch("requests", index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let updated = self
            .store
            .batch_update_tickets(updates, viewer.scope(), &origin)
            .await?;
        Ok(Response::new(proto::BatchUpdateTicketsResponse {
            tickets: updated
                .into_iter()
                .map(|ticket| ticket_to_proto(viewer.redact(ticket)))
                .collect(),
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
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        record_ticket_id(request.ticket_id);
        let body = parse_body(request.body)?;
        let visibility = parse_visibility(request.visibility)?;
        if viewer.customer().is_some() && visibility != Visibility::Public {
            return Err(
                Error::denied("visibility", "customers may add PUBLIC comments only").into(),
            );
        }
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
        let viewer = self.viewer(request.extensions()).await?;
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
        let viewer = self.viewer(request.extensions()).await?;
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
                .filter_map(|event| match viewer.customer() {
                    None => Some(event),
                    Some(view) => view.redact_event(event),
                })
                .map(|event| event_to_proto(event, false))
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    type WatchTicketsStream = EventStream;

    async fn watch_tickets(
        &self,
        request: Request<proto::WatchTicketsRequest>,
    ) -> Result<Response<Self::WatchTicketsStream>, Status> {
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        if request.after_event_id < 0 {
            return Err(Error::invalid("after_event_id", "must not be negative").into());
        }
        if let Some(view) = viewer.customer() {
            // Filtering on a field the customer cannot see would reveal its values one stream at a time.
            for (field, set) in [
                ("pipeline_id", request.pipeline_id_set),
                ("stage_id", !request.stage_ids.is_empty()),
                ("assignee_id", !request.assignee_id.is_empty()),
                ("organization_id", !request.organization_id.is_empty()),
            ] {
                if set && !view.sees_field(field) {
                    let name = if field == "stage_id" {
                        "stage_ids"
                    } else {
                        field
                    };
                    return Err(Error::denied(
                        name,
                        format!("{field} is not visible through this portal"),
                    )
                    .into());
                }
            }
        }
        let filter = TicketFilter {
            ticket_ids: request.ticket_ids.into_iter().collect(),
            pipeline_id: request.pipeline_id_set.then_some(request.pipeline_id),
            stage_ids: request.stage_ids.into_iter().collect::<HashSet<_>>(),
            assignee_id: (!request.assignee_id.is_empty()).then_some(request.assignee_id),
            organization_id: (!request.organization_id.is_empty())
                .then_some(request.organization_id),
        };
        let after = (request.after_event_id > 0).then_some(request.after_event_id);
        let watch = self.hub.watch_tickets(filter, after).await?;
        let store = self.store.clone();
        let viewer = Arc::new(viewer);
        let stream = watch
            .then(move |item| {
                let store = store.clone();
                let viewer = Arc::clone(&viewer);
                async move {
                    match item {
                        WatchItem::Item(event) => match viewer.customer() {
                            None => Some(Ok(event_to_proto((*event).clone(), true))),
                            Some(view) => customer_event(&store, view, &event).await.transpose(),
                        },
                        WatchItem::End {
                            resume_after,
                            reason,
                        } => Some(Err(watch_end_status(resume_after, reason))),
                    }
                }
            })
            .filter_map(|item| item);
        Ok(Response::new(Box::pin(stream)))
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
        let caller = principal(request.extensions())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        let follower_id = follower_of(&caller, &request.follower_id)?;
        let follower = self
            .store
            .follow_ticket(viewer.scope(), request.ticket_id, follower_id)
            .await?;
        Ok(Response::new(proto::Follower {
            ticket_id: follower.ticket_id,
            follower_id: follower.follower_id,
            create_time: Some(timestamp(follower.create_time)),
        }))
    }

    async fn unfollow_ticket(
        &self,
        request: Request<proto::UnfollowTicketRequest>,
    ) -> Result<Response<proto::UnfollowTicketResponse>, Status> {
        let caller = principal(request.extensions())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        let follower_id = follower_of(&caller, &request.follower_id)?;
        self.store
            .unfollow_ticket(viewer.scope(), request.ticket_id, &follower_id)
            .await?;
        Ok(Response::new(proto::UnfollowTicketResponse {}))
    }

    async fn list_followers(
        &self,
        request: Request<proto::ListFollowersRequest>,
    ) -> Result<Response<proto::ListFollowersResponse>, Status> {
        let caller = principal(request.extensions())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("followers ticket={}", request.ticket_id));
        let after: Option<String> = decode_page_token(&query, &request.page_token)?;
        // Followers may belong to other organizations: a customer learns only whether it follows.
        let only = viewer.customer().map(|_| caller.id.as_str());
        let page = self
            .store
            .list_followers(viewer.scope(), request.ticket_id, only, page_size, after)
            .await?;
        Ok(Response::new(proto::ListFollowersResponse {
            followers: page
                .items
                .into_iter()
                .map(|follower| proto::Follower {
                    ticket_id: follower.ticket_id,
                    follower_id: follower.follower_id,
                    create_time: Some(timestamp(follower.create_time)),
                })
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn follow_project(
        &self,
        request: Request<proto::FollowProjectRequest>,
    ) -> Result<Response<proto::ProjectFollower>, Status> {
        let request = request.into_inner();
        let (project_id, kind, follower_id) =
            parse_project_follower(&request.project_id, request.kind, &request.follower_id)?;
        let follower = self
            .store
            .follow_project(project_id, kind, follower_id)
            .await?;
        Ok(Response::new(project_follower_to_proto(follower)))
    }

    async fn unfollow_project(
        &self,
        request: Request<proto::UnfollowProjectRequest>,
    ) -> Result<Response<proto::UnfollowProjectResponse>, Status> {
        let request = request.into_inner();
        let (project_id, kind, follower_id) =
            parse_project_follower(&request.project_id, request.kind, &request.follower_id)?;
        self.store
            .unfollow_project(&project_id, kind, &follower_id)
            .await?;
        Ok(Response::new(proto::UnfollowProjectResponse {}))
    }

    async fn list_project_followers(
        &self,
        request: Request<proto::ListProjectFollowersRequest>,
    ) -> Result<Response<proto::ListProjectFollowersResponse>, Status> {
        let request = request.into_inner();
        let project_id = parse_id("project_id", &request.project_id)?;
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("project followers project={project_id}"));
        let after: Option<(String, String)> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_project_followers(&project_id, page_size, after)
            .await?;
        Ok(Response::new(proto::ListProjectFollowersResponse {
            followers: page
                .items
                .into_iter()
                .map(project_follower_to_proto)
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn log_time(
        &self,
        request: Request<proto::LogTimeRequest>,
    ) -> Result<Response<proto::TimeEntry>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        record_ticket_id(request.ticket_id);
        let entry = NewTimeEntry::parse(
            request.ticket_id,
            request.minutes,
            &request.work_date,
            request.note,
        )?;
        if let Some(view) = viewer.customer() {
            // The ticket is checked first, so a customer cannot learn through this error that it exists.
            self.store
                .require_visible_ticket(viewer.scope(), request.ticket_id)
                .await?;
            if !view.portal.time_logging {
                return Err(Error::denied(
                    "ticket_id",
                    format!("portal {} does not let customers log time", view.portal.id),
                )
                .into());
            }
        }
        let entry = self.store.log_time(viewer.scope(), entry, &origin).await?;
        Ok(Response::new(time_entry_to_proto(entry)))
    }

    async fn list_time_entries(
        &self,
        request: Request<proto::ListTimeEntriesRequest>,
    ) -> Result<Response<proto::ListTimeEntriesResponse>, Status> {
        let caller = principal(request.extensions())?;
        let viewer = self.viewer(request.extensions()).await?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("time entries ticket={}", request.ticket_id));
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        // The desk's own timesheets are internal: a customer sees the time it logged itself.
        let author = viewer.customer().map(|_| caller.id.as_str());
        let page = self
            .store
            .list_time_entries(viewer.scope(), request.ticket_id, author, page_size, after)
            .await?;
        Ok(Response::new(proto::ListTimeEntriesResponse {
            time_entries: page.items.into_iter().map(time_entry_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn delete_time_entry(
        &self,
        request: Request<proto::DeleteTimeEntryRequest>,
    ) -> Result<Response<proto::DeleteTimeEntryResponse>, Status> {
        let caller = principal(request.extensions())?;
        let viewer = self.viewer(request.extensions()).await?;
        let author = (caller.role != Role::Admin).then_some(caller.id.as_str());
        self.store
            .delete_time_entry(viewer.scope(), request.get_ref().id, author)
            .await?;
        Ok(Response::new(proto::DeleteTimeEntryResponse {}))
    }
}

impl TicketApi {
    /// How the caller sees tickets.
    async fn viewer(&self, extensions: &tonic::Extensions) -> Result<Viewer, Error> {
        viewer(&self.store, &principal(extensions)?).await
    }

    async fn search(
        &self,
        request: proto::SearchTicketsRequest,
        viewer: &Viewer,
    ) -> Result<proto::SearchTicketsResponse, Error> {
        if let Some(view) = viewer.customer() {
            for (group_index, group) in request.filter_groups.iter().enumerate() {
                for (filter_index, filter) in group.filters.iter().enumerate() {
                    if !view.may_filter_on(&filter.property) {
                        return Err(Error::denied(
                            format!(
                                "filter_groups[{group_index}].filters[{filter_index}].property"
                            ),
                            format!("{:?} is not visible through this portal", filter.property),
                        ));
                    }
                }
            }
        }
        let page_size = page_size(request.page_size)?;
        let order = parse_sorts(&request.sorts)?;
        // Everything but the page fields identifies the search, so its tokens fit no other one.
        let query = query_fingerprint(&format!(
            "search {:?}",
            proto::SearchTicketsRequest {
                page_size: 0,
                page_token: String::new(),
                ..request.clone()
            }
            .encode_to_vec()
        ));
        let after = decode_page_token(&query, &request.page_token)?;
        let filters = request
            .filter_groups
            .into_iter()
            .map(|group| group.filters.into_iter().map(raw_filter).collect())
            .collect();
        let page = self
            .store
            .search_tickets(
                filters,
                TicketListQuery {
                    order,
                    show_archived: request.show_archived,
                    page_size,
                    after,
                    filter_groups: Vec::new(),
                    words: query_words(&request.query),
                    scope: viewer.scope().cloned(),
                },
            )
            .await?;
        Ok(proto::SearchTicketsResponse {
            tickets: page
                .items
                .into_iter()
                .map(|ticket| ticket_to_proto(viewer.redact(ticket)))
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        })
    }
}

fn raw_filter(filter: proto::Filter) -> RawFilter {
    use proto::FilterOperator as Wire;
    let operator = match Wire::try_from(filter.operator) {
        Ok(Wire::Eq) => Some(Operator::Eq),
        Ok(Wire::Neq) => Some(Operator::Neq),
        Ok(Wire::Lt) => Some(Operator::Lt),
        Ok(Wire::Lte) => Some(Operator::Lte),
        Ok(Wire::Gt) => Some(Operator::Gt),
        Ok(Wire::Gte) => Some(Operator::Gte),
        Ok(Wire::Between) => Some(Operator::Between),
        Ok(Wire::In) => Some(Operator::In),
        Ok(Wire::NotIn) => Some(Operator::NotIn),
        Ok(Wire::HasProperty) => Some(Operator::HasProperty),
        Ok(Wire::NotHasProperty) => Some(Operator::NotHasProperty),
        Ok(Wire::ContainsToken) => Some(Operator::ContainsToken),
        Ok(Wire::NotContainsToken) => Some(Operator::NotContainsToken),
        Ok(Wire::Unspecified) | Err(_) => None,
    };
    RawFilter {
        property: filter.property,
        operator,
        value: filter.value,
        values: filter.values,
        high_value: filter.high_value,
    }
}

/// At most one sort, on `id`, `create_time` or `update_time`, ASCENDING (default) or DESCENDING.
fn parse_sorts(sorts: &[proto::Sort]) -> Result<TicketOrder, Error> {
    let Some(sort) = sorts.first() else {
        return Ok(TicketOrder {
            field: TicketOrderField::Id,
            descending: false,
        });
    };
    if sorts.len() > 1 {
        return Err(Error::invalid("sorts", "at most one sort is supported"));
    }
    let field = match sort.property.as_str() {
        "id" => TicketOrderField::Id,
        "create_time" => TicketOrderField::CreateTime,
        "update_time" => TicketOrderField::UpdateTime,
        other => {
            return Err(Error::invalid(
                "sorts[0].property",
                format!("cannot sort by {other:?}; use id, create_time or update_time"),
            ));
        }
    };
    let descending = match sort.direction.to_ascii_uppercase().as_str() {
        "" | "ASCENDING" => false,
        "DESCENDING" => true,
        other => {
            return Err(Error::invalid(
                "sorts[0].direction",
                format!("{other:?} is not ASCENDING or DESCENDING"),
            ));
        }
    };
    Ok(TicketOrder { field, descending })
}

/// A ticket and its links to create; errors name `ticket.<field>` or `associations[i].<field>`.
fn new_ticket_from_proto(request: proto::CreateTicketRequest) -> Result<NewTicket, Error> {
    let ticket = request
        .ticket
        .ok_or_else(|| Error::invalid("ticket", "is required"))?;
    let draft = draft_from_proto(ticket).map_err(|error| error.within("ticket"))?;
    let associations = request
        .associations
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            spec_from_proto(Some(spec))
                .map_err(|error| error.within(&format!("associations[{index}]")))
        })
        .collect::<Result<_, _>>()?;
    Ok(NewTicket {
        draft,
        associations,
    })
}

/// An update; errors name `ticket.<field>` or `update_mask`.
fn update_from_proto(request: proto::UpdateTicketRequest) -> Result<TicketUpdate, Error> {
    let ticket = request
        .ticket
        .ok_or_else(|| Error::invalid("ticket", "is required"))?;
    if ticket.id == 0 {
        return Err(Error::invalid("ticket.id", "is required"));
    }
    let (id, etag) = (ticket.id, ticket.etag.clone());
    let changes = changes_from_proto(ticket, request.update_mask)?;
    Ok(TicketUpdate { id, etag, changes })
}

fn parse_visibility(raw: i32) -> Result<Visibility, Error> {
    match proto::CommentVisibility::try_from(raw) {
        Ok(proto::CommentVisibility::Public) => Ok(Visibility::Public),
        Ok(proto::CommentVisibility::Internal) => Ok(Visibility::Internal),
        _ => Err(Error::invalid(
            "visibility",
            "is required: PUBLIC or INTERNAL",
        )),
    }
}

fn comment_to_proto(comment: Comment) -> proto::Comment {
    let visibility = match comment.visibility {
        Visibility::Public => proto::CommentVisibility::Public,
        Visibility::Internal => proto::CommentVisibility::Internal,
    };
    proto::Comment {
        id: comment.id,
        ticket_id: comment.ticket_id,
        author_id: comment.author_id,
        body: comment.body,
        visibility: visibility.into(),
        create_time: Some(timestamp(comment.create_time)),
    }
}

/// The wire form of an event; streams carry the ticket snapshot, history listings leave it out.
fn event_to_proto(event: TicketEvent, with_ticket: bool) -> proto::TicketEvent {
    let kind = match event.kind {
        EventKind::Created => proto::TicketEventKind::Created,
        EventKind::Updated => proto::TicketEventKind::Updated,
        EventKind::StageChanged => proto::TicketEventKind::StageChanged,
        EventKind::Archived => proto::TicketEventKind::Archived,
        EventKind::Restored => proto::TicketEventKind::Restored,
        EventKind::CommentAdded => proto::TicketEventKind::CommentAdded,
        EventKind::AssociationAdded => proto::TicketEventKind::AssociationAdded,
        EventKind::AssociationRemoved => proto::TicketEventKind::AssociationRemoved,
    };
    let (comment, association) = match event.detail {
        Some(EventDetail::Comment(comment)) => (Some(comment_to_proto(comment)), None),
        Some(EventDetail::Association(link)) => (None, Some(association_to_proto(link))),
        None => (None, None),
    };
    proto::TicketEvent {
        event_id: event.event_id,
        ticket_id: event.ticket_id,
        kind: kind.into(),
        changes: event
            .changes
            .into_iter()
            .map(|change| proto::FieldChange {
                field: change.field,
                old_value: change.old_value,
                new_value: change.new_value,
            })
            .collect(),
        actor_id: event.actor_id,
        create_time: Some(timestamp(event.create_time)),
        comment,
        association,
        ticket: event.ticket.filter(|_| with_ticket).map(ticket_to_proto),
    }
}

/// Parses `order_by`: `id`, `create_time` or `update_time`, optionally followed by `asc` or `desc`.
fn parse_order_by(order_by: &str) -> Result<TicketOrder, Error> {
    let invalid = || {
        Error::invalid(
            "order_by",
            format!(
                "{order_by:?} is not supported; use id, create_time or update_time, optionally followed by asc or desc"
            ),
        )
    };
    let mut words = order_by.split_whitespace();
    let field = match words.next() {
        None | Some("id") => TicketOrderField::Id,
        Some("create_time") => TicketOrderField::CreateTime,
        Some("update_time") => TicketOrderField::UpdateTime,
        Some(_) => return Err(invalid()),
    };
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid()),
    };
    if words.next().is_some() {
        return Err(invalid());
    }
    Ok(TicketOrder { field, descending })
}

fn parse_priority(raw: i32) -> Result<Option<Priority>, Error> {
    match proto::Priority::try_from(raw) {
        Ok(proto::Priority::Unspecified) => Ok(None),
        Ok(proto::Priority::Low) => Ok(Some(Priority::Low)),
        Ok(proto::Priority::Medium) => Ok(Some(Priority::Medium)),
        Ok(proto::Priority::High) => Ok(Some(Priority::High)),
        Ok(proto::Priority::Urgent) => Ok(Some(Priority::Urgent)),
        Err(_) => Err(Error::invalid(
            "priority",
            format!("{raw} is not a Priority value"),
        )),
    }
}

fn priority_to_proto(priority: Option<Priority>) -> proto::Priority {
    match priority {
        None => proto::Priority::Unspecified,
        Some(Priority::Low) => proto::Priority::Low,
        Some(Priority::Medium) => proto::Priority::Medium,
        Some(Priority::High) => proto::Priority::High,
        Some(Priority::Urgent) => proto::Priority::Urgent,
    }
}

/// Zero ids mean "not given": the default pipeline and its first stage.
fn optional_id(id: i64) -> Option<i64> {
    (id != 0).then_some(id)
}

fn draft_from_proto(ticket: proto::Ticket) -> Result<TicketDraft, Error> {
    Ok(TicketDraft {
        subject: parse_subject(&ticket.subject)?,
        content: parse_content(ticket.content)?,
        pipeline_id: optional_id(ticket.pipeline_id),
        stage_id: optional_id(ticket.stage_id),
        priority: parse_priority(ticket.priority)?,
        requester_id: parse_reference("requester_id", ticket.requester_id)?,
        assignee_id: parse_reference("assignee_id", ticket.assignee_id)?,
        organization_id: parse_reference("organization_id", ticket.organization_id)?,
        ticket_type: parse_reference("ticket_type", ticket.ticket_type)?,
        tags: parse_tags(ticket.tags)?,
        project_id: parse_reference("project_id", ticket.project_id)?,
        properties: parse_properties(ticket.properties)?,
    })
}

/// The fields an update with an empty mask applies: every one the request sets to a non-default value.
/// Properties are merged one by one, the way HubSpot's PATCH treats them.
fn fields_set(ticket: &proto::Ticket) -> Vec<&'static str> {
    let mut paths = Vec::new();
    let mut add = |is_set: bool, path: &'static str| {
        if is_set {
            paths.push(path);
        }
    };
    add(!ticket.subject.is_empty(), "subject");
    add(!ticket.content.is_empty(), "content");
    add(ticket.pipeline_id != 0, "pipeline_id");
    add(ticket.stage_id != 0, "stage_id");
    add(ticket.priority != 0, "priority");
    add(!ticket.requester_id.is_empty(), "requester_id");
    add(!ticket.assignee_id.is_empty(), "assignee_id");
    add(!ticket.organization_id.is_empty(), "organization_id");
    add(!ticket.ticket_type.is_empty(), "ticket_type");
    add(!ticket.tags.is_empty(), "tags");
    add(!ticket.project_id.is_empty(), "project_id");
    paths
}

/// Turns an update request into changes; errors name `update_mask` or the `ticket.` field at fault.
fn changes_from_proto(
    mut ticket: proto::Ticket,
    mask: Option<prost_types::FieldMask>,
) -> Result<TicketChanges, Error> {
    let empty_mask = mask.as_ref().is_none_or(|mask| mask.paths.is_empty());
    let mut paths = update_paths(mask, || fields_set(&ticket));
    if empty_mask {
        paths.extend(
            ticket
                .properties
                .keys()
                .map(|name| format!("properties.{name}")),
        );
    }
    let mut changes = TicketChanges::default();
    for path in paths {
        let known =
            apply_path(&mut changes, &mut ticket, &path).map_err(|error| error.within("ticket"))?;
        if !known {
            return Err(bad_mask_path(&path, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS));
        }
    }
    Ok(changes)
}

/// Moves a reference field out of the request, validated.
fn take_reference(field: &str, value: &mut String) -> Result<String, Error> {
    parse_reference(field, std::mem::take(value))
}

/// Applies one mask path; `false` when the path is not an updatable field.
fn apply_path(
    changes: &mut TicketChanges,
    ticket: &mut proto::Ticket,
    path: &str,
) -> Result<bool, Error> {
    match path {
        "subject" => changes.subject = Some(parse_subject(&ticket.subject)?),
        "content" => changes.content = Some(parse_content(std::mem::take(&mut ticket.content))?),
        "pipeline_id" => changes.pipeline_id = Some(ticket.pipeline_id),
        "stage_id" => {
            changes.stage_id = Some(optional_id(ticket.stage_id).ok_or_else(|| {
                Error::invalid("stage_id", "a ticket is always in a stage; name one")
            })?)
        }
        "priority" => changes.priority = Some(parse_priority(ticket.priority)?),
        "requester_id" => {
            changes.requester_id = Some(take_reference("requester_id", &mut ticket.requester_id)?)
        }
        "assignee_id" => {
            changes.assignee_id = Some(take_reference("assignee_id", &mut ticket.assignee_id)?)
        }
        "organization_id" => {
            changes.organization_id = Some(take_reference(
                "organization_id",
                &mut ticket.organization_id,
            )?)
        }
        "ticket_type" => {
            changes.ticket_type = Some(take_reference("ticket_type", &mut ticket.ticket_type)?)
        }
        "tags" => changes.tags = Some(parse_tags(std::mem::take(&mut ticket.tags))?),
        "project_id" => {
            changes.project_id = Some(take_reference("project_id", &mut ticket.project_id)?)
        }
        "properties" => changes.properties = Some(parse_properties(ticket.properties.clone())?),
        other => match other.strip_prefix("properties.") {
            Some(name) => {
                let value = ticket.properties.get(name).cloned();
                if let Some(value) = &value {
                    ticket::check_property(name, value)?;
                }
                changes.property_updates.insert(name.to_owned(), value);
            }
            None => return Ok(false),
        },
    }
    Ok(true)
}

/// The wire form of a ticket.
pub(crate) fn ticket_to_proto(ticket: Ticket) -> proto::Ticket {
    let archived = ticket.archived();
    proto::Ticket {
        etag: ticket.etag(),
        id: ticket.id,
        subject: ticket.subject,
        content: ticket.content,
        pipeline_id: ticket.pipeline_id,
        stage_id: ticket.stage_id,
        priority: priority_to_proto(ticket.priority).into(),
        requester_id: ticket.requester_id,
        assignee_id: ticket.assignee_id,
        organization_id: ticket.organization_id,
        ticket_type: ticket.ticket_type,
        tags: ticket.tags,
        project_id: ticket.project_id,
        properties: ticket.properties,
        create_time: Some(timestamp(ticket.create_time)),
        update_time: Some(timestamp(ticket.update_time)),
        close_time: ticket.close_time.map(timestamp),
        archive_time: ticket.archive_time.map(timestamp),
        archived,
    }
}

/// Applies a customer's rules to a new ticket: it requests it for itself and its organization, sets only
/// editable fields, and links nothing (associations are the desk's records).
fn prepare_new_ticket(viewer: &Viewer, new: &mut NewTicket) -> Result<(), Error> {
    let Some(view) = viewer.customer() else {
        return Ok(());
    };
    if !new.associations.is_empty() {
        return Err(Error::denied(
            "associations",
            "customers cannot link tickets to other objects",
        ));
    }
    view.prepare_draft(&mut new.draft)
        .map_err(|error| error.within("ticket"))
}

/// A stream event as a customer may see it: `None` when the ticket is not visible to it or nothing of the
/// event may reach it. The requester and organization rules are judged on the event's own snapshot (what the
/// ticket was when the change committed); the follower rules need the database.
async fn customer_event(
    store: &Store,
    view: &CustomerView,
    event: &TicketEvent,
) -> Result<Option<proto::TicketEvent>, Status> {
    let shown_by_fields = event
        .ticket
        .as_ref()
        .is_some_and(|ticket| view.scope.shows_by_fields(ticket));
    if !shown_by_fields {
        let type_allowed = event
            .ticket
            .as_ref()
            .is_none_or(|ticket| view.scope.type_allowed(&ticket.ticket_type));
        if !type_allowed || !view.scope.needs_followers() {
            return Ok(None);
        }
        match store.ticket_visible(&view.scope, event.ticket_id).await {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(error) => {
                tracing::warn!(%error, "checking a customer's stream event failed; ending the stream");
                // Resuming just before this event re-judges it; every earlier one was delivered or left out.
                return Err(watch_end_status(
                    event.event_id - 1,
                    "the database could not be reached",
                ));
            }
        }
    }
    Ok(view
        .redact_event(event.clone())
        .map(|event| event_to_proto(event, true)))
}

/// Whom a follow request is about: the caller by default; only staff may name someone else.
fn follower_of(caller: &Principal, requested: &str) -> Result<String, Error> {
    if requested.is_empty() || requested == caller.id {
        return Ok(caller.id.clone());
    }
    if caller.role == Role::Customer {
        return Err(Error::denied(
            "follower_id",
            "customers may follow or unfollow only for themselves",
        ));
    }
    parse_id("follower_id", requested)
}

fn parse_project_follower(
    project_id: &str,
    kind: i32,
    follower_id: &str,
) -> Result<(String, FollowerKind, String), Error> {
    let project_id = parse_id("project_id", project_id)?;
    let kind = match proto::FollowerKind::try_from(kind) {
        Ok(proto::FollowerKind::User) => FollowerKind::User,
        Ok(proto::FollowerKind::Organization) => FollowerKind::Organization,
        _ => {
            return Err(Error::invalid(
                "kind",
                "is required: FOLLOWER_KIND_USER or FOLLOWER_KIND_ORGANIZATION",
            ));
        }
    };
    let follower_id = parse_id("follower_id", follower_id)?;
    Ok((project_id, kind, follower_id))
}

fn project_follower_to_proto(follower: ProjectFollower) -> proto::ProjectFollower {
    let kind = match follower.kind {
        FollowerKind::User => proto::FollowerKind::User,
        FollowerKind::Organization => proto::FollowerKind::Organization,
    };
    proto::ProjectFollower {
        project_id: follower.project_id,
        kind: kind.into(),
        follower_id: follower.follower_id,
        create_time: Some(timestamp(follower.create_time)),
    }
}

fn time_entry_to_proto(entry: TimeEntry) -> proto::TimeEntry {
    proto::TimeEntry {
        id: entry.id,
        ticket_id: entry.ticket_id,
        author_id: entry.author_id,
        minutes: entry.minutes,
        work_date: entry.work_date.format("%Y-%m-%d").to_string(),
        note: entry.note,
        create_time: Some(timestamp(entry.create_time)),
    }
}
