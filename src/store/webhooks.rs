//! Webhook deliveries, enqueued with the write that produced their events.

use super::{WriteTxn, outbox::AppendedEvent};
use crate::domain::Error;

/// Enqueues a delivery of each appended event to every enabled webhook that subscribes to it, and each
/// `forced` (webhook id, event id) pair a rule asked for.
pub(super) async fn enqueue(
    _txn: &WriteTxn,
    _events: &[AppendedEvent<'_>],
    _forced: &[(i64, i64)],
) -> Result<(), Error> {
    // Filled in by the webhook worker change (issue 13).
    Ok(())
}
