//! Live streams: one tailer per process reads the outbox in commit order and fans it out to every stream
//! through broadcast channels.
//!
//! A stream first subscribes, then replays from the database everything after its cursor, then follows the
//! broadcast, skipping what it already sent. A stream that falls more than a channel's capacity behind is
//! not waited for: it loses its place in the channel and goes back to reading the database from its cursor,
//! so it neither blocks other streams nor holds memory for them. PostgreSQL `LISTEN` wakes the tailer when
//! any replica commits; a local signal does so for this process's own commits; a slow poll covers a lost
//! notification.

mod hub;
mod shared;
mod watch;

pub use hub::{EventHub, HubConfig};
pub use shared::SharedEvent;
pub use watch::{CardWatch, RESUME_TRAILER, TicketFilter, TicketWatch, WatchItem};
