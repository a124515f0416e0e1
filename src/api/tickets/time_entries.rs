//! Time logged against tickets.

use tonic::Request;

use super::TicketApi;
use crate::{
    api::{
        caller::viewer, decode_page_token, encode_page_token, origin, principal, query_fingerprint,
        record_ticket_id, timestamp,
    },
    auth::Role,
    domain::{
        Error,
        access::time_entry_deleter,
        page::{Cursor, page_size},
        time_entry::{NewTimeEntry, TimeEntry},
    },
    proto,
};

impl TicketApi {
    pub(super) async fn log(
        &self,
        request: Request<proto::LogTimeRequest>,
    ) -> Result<proto::TimeEntry, Error> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        record_ticket_id(request.ticket_id);
        let entry = NewTimeEntry::parse(
            request.ticket_id,
            request.minutes,
            &request.work_date,
            request.note,
        )?;
        if viewer.customer().is_some() {
            // The ticket is checked first, so a customer cannot learn through the next error that it exists.
            self.store
                .require_visible_ticket(viewer.scope(), request.ticket_id)
                .await?;
        }
        viewer.check_time_logging()?;
        let entry = self.store.log_time(viewer.scope(), entry, &origin).await?;
        Ok(time_entry_to_proto(entry))
    }

    pub(super) async fn time_entries(
        &self,
        request: Request<proto::ListTimeEntriesRequest>,
    ) -> Result<proto::ListTimeEntriesResponse, Error> {
        let caller = principal(request.extensions())?;
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("time entries ticket={}", request.ticket_id));
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let author = viewer.own_entries_only(&caller.id);
        let page = self
            .store
            .list_time_entries(viewer.scope(), request.ticket_id, author, page_size, after)
            .await?;
        Ok(proto::ListTimeEntriesResponse {
            time_entries: page.items.into_iter().map(time_entry_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        })
    }

    pub(super) async fn delete_entry(
        &self,
        request: Request<proto::DeleteTimeEntryRequest>,
    ) -> Result<proto::DeleteTimeEntryResponse, Error> {
        let caller = principal(request.extensions())?;
        let viewer = viewer(request.extensions())?;
        let author = time_entry_deleter(&caller.id, caller.role == Role::Admin);
        self.store
            .delete_time_entry(viewer.scope(), request.get_ref().id, author)
            .await?;
        Ok(proto::DeleteTimeEntryResponse {})
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
