//! Queries over tickets: what a listing or a search asks the store for.

use super::{access::TicketScope, page::Cursor, search::Predicate, ticket::Ticket};

/// The column tickets are listed by; ties are broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOrderField {
    Id,
    CreateTime,
    UpdateTime,
}

/// A listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketOrder {
    pub field: TicketOrderField,
    pub descending: bool,
}

/// One page request of `ListTickets` or `SearchTickets`.
#[derive(Debug, Clone)]
pub struct TicketListQuery {
    pub order: TicketOrder,
    pub show_archived: bool,
    pub page_size: u64,
    pub after: Option<Cursor>,
    /// Search filters: any group, all predicates of it. Empty: no filter.
    pub filter_groups: Vec<Vec<Predicate>>,
    /// Words that must all appear in subject or content.
    pub words: Vec<String>,
    /// A customer's visibility rules; `None` for staff.
    pub scope: Option<TicketScope>,
}

impl TicketOrder {
    /// The cursor a page ending at `ticket` continues from.
    pub fn cursor_of(&self, ticket: &Ticket) -> Cursor {
        let key = match self.field {
            TicketOrderField::Id => ticket.id,
            TicketOrderField::CreateTime => ticket.create_time.timestamp_micros(),
            TicketOrderField::UpdateTime => ticket.update_time.timestamp_micros(),
        };
        Cursor { key, id: ticket.id }
    }
}
