//! Commands that change tickets, as the store carries them out.

use super::{
    association::AssociationSpec,
    ticket::{TicketChanges, TicketDraft},
};
use chrono::{DateTime, Utc};

/// Most items in one batch call.
pub const MAX_BATCH: usize = 100;

/// One ticket to create, with the links to make with it.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub draft: TicketDraft,
    pub associations: Vec<AssociationSpec>,
}

/// Times a ticket brings from the desk it is imported from (or, for a filed chat, when it closed); unset ones
/// are the time of the write, and a ticket placed in a CLOSED stage closes at `update_time` unless
/// `close_time` says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoricalTimes {
    pub create_time: Option<DateTime<Utc>>,
    pub update_time: Option<DateTime<Utc>>,
    pub close_time: Option<DateTime<Utc>>,
}

/// One update of a batch.
#[derive(Debug, Clone)]
pub struct TicketUpdate {
    pub id: i64,
    pub etag: String,
    pub changes: TicketChanges,
}
