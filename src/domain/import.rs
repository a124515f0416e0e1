//! Bulk import of a desk's history (`TicketService.ImportTickets`): items, what became of each, and the rules
//! an item's times follow.

use chrono::{DateTime, Utc};

use super::{
    Error, Result,
    commands::{HistoricalTimes, NewTicket},
    comment::Visibility,
};

/// Most items one transaction holds: large enough that a commit's cost is shared, small enough that a stream
/// cut short loses little unacknowledged work and memory stays bounded.
pub const CHUNK_MAX_ITEMS: usize = 500;
/// Most comments one item may carry.
pub const COMMENTS_MAX: usize = 1_000;

/// What to do with an item whose `external_id` was imported before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Leave the ticket alone; the item is answered ALREADY_EXISTS with its id, so resending is safe.
    Skip,
    /// Overwrite the ticket with the item.
    Update,
}

/// A historical comment.
#[derive(Debug, Clone)]
pub struct ImportedComment {
    pub body: String,
    pub visibility: Visibility,
    /// Empty: the caller.
    pub author_id: String,
    /// `None`: the ticket's create time.
    pub create_time: Option<DateTime<Utc>>,
}

/// One ticket to import, checked.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// The ticket, with a non-empty `external_id`.
    pub ticket: NewTicket,
    pub times: HistoricalTimes,
    pub comments: Vec<ImportedComment>,
}

/// What became of one item.
#[derive(Debug)]
pub enum ItemOutcome {
    Created(i64),
    Updated(i64),
    /// Imported before; left alone (ON_CONFLICT_SKIP).
    Skipped(i64),
    Failed(Error),
}

/// An item's times, checked against each other; errors name `ticket.<field>`.
pub fn check_times(times: &HistoricalTimes) -> Result<()> {
    if let (Some(create), Some(update)) = (times.create_time, times.update_time)
        && update < create
    {
        return Err(Error::invalid(
            "ticket.update_time",
            "is before create_time",
        ));
    }
    if let (Some(create), Some(close)) = (times.create_time, times.close_time)
        && close < create
    {
        return Err(Error::invalid("ticket.close_time", "is before create_time"));
    }
    Ok(())
}
