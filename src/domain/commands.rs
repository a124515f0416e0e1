//! Commands that change tickets, as the store carries them out.

use super::{
    association::AssociationSpec,
    ticket::{TicketChanges, TicketDraft},
};

/// Most items in one batch call.
pub const MAX_BATCH: usize = 100;

/// One ticket to create, with the links to make with it.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub draft: TicketDraft,
    pub associations: Vec<AssociationSpec>,
}

/// One update of a batch.
#[derive(Debug, Clone)]
pub struct TicketUpdate {
    pub id: i64,
    pub etag: String,
    pub changes: TicketChanges,
}
