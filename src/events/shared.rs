//! What the ticket channel carries: an event, and the bytes staff streams send for it.

use std::{
    ops::Deref,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;

use crate::domain::event::TicketEvent;

/// A ticket event as streams share it. Every staff stream sends the same message for an event, so it is
/// encoded once, by the first stream to send it, and the others copy its bytes instead of converting and
/// encoding the event again (10,000 streams made that the bulk of a fan-out's CPU).
#[derive(Debug)]
pub struct SharedEvent {
    event: TicketEvent,
    staff_encoding: OnceLock<Bytes>,
}

impl SharedEvent {
    /// The staff encoding of the event, made by `encode` if no stream has made it yet.
    pub fn staff_encoding(&self, encode: impl FnOnce(&TicketEvent) -> Bytes) -> Bytes {
        self.staff_encoding
            .get_or_init(|| encode(&self.event))
            .clone()
    }
}

/// What the ticket channel carries.
#[derive(Debug, Clone)]
pub(super) enum LiveItem {
    Event(Arc<SharedEvent>),
    /// The server started stopping or the database went away: every stream looks at both and ends if either
    /// holds. Streams wait on the channel alone, so a delivery polls nothing else: a wait on the two signals,
    /// polled at every message, took two locks shared by all streams per message per stream.
    WakeUp,
}

impl From<TicketEvent> for SharedEvent {
    fn from(event: TicketEvent) -> Self {
        Self {
            event,
            staff_encoding: OnceLock::new(),
        }
    }
}

impl Deref for SharedEvent {
    type Target = TicketEvent;

    fn deref(&self) -> &TicketEvent {
        &self.event
    }
}
