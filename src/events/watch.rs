//! The streams behind WatchTickets and WatchCard.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tokio::sync::{broadcast::error::RecvError, mpsc, watch};

use super::hub::{EventHub, stopped};
use crate::domain::{Error, chat_card::CardRender, event::TicketEvent};

/// Trailer naming the last event id a stream delivered; reconnecting with it misses nothing.
pub const RESUME_TRAILER: &str = "ticketd-resume-after-event-id";
/// Messages buffered per stream between its task and the connection.
const STREAM_BUFFER: usize = 64;

/// What a stream yields: an item, or the reason it ends and where to resume.
#[derive(Debug, Clone)]
pub enum WatchItem<T> {
    Item(T),
    End {
        resume_after: i64,
        reason: &'static str,
    },
}

/// The stream of a WatchTickets call.
pub type TicketWatch = mpsc::Receiver<WatchItem<Arc<TicketEvent>>>;
/// The stream of a WatchCard call.
pub type CardWatch = mpsc::Receiver<WatchItem<Arc<(i64, CardRender)>>>;

/// Which ticket events a stream wants; every filter that is set must match the ticket before or after the
/// change.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub ticket_ids: HashSet<i64>,
    pub pipeline_id: Option<i64>,
    pub stage_ids: HashSet<i64>,
    pub assignee_id: Option<String>,
    pub organization_id: Option<String>,
}

impl TicketFilter {
    /// Whether `event` passes every filter that is set.
    pub fn matches(&self, event: &TicketEvent) -> bool {
        if !self.ticket_ids.is_empty() && !self.ticket_ids.contains(&event.ticket_id) {
            return false;
        }
        let Some(ticket) = &event.ticket else {
            // Without a snapshot only the id filter can be judged.
            return self.pipeline_id.is_none()
                && self.stage_ids.is_empty()
                && self.assignee_id.is_none()
                && self.organization_id.is_none();
        };
        let before = |field: &str| {
            event
                .changes
                .iter()
                .find(|change| change.field == field)
                .map(|change| change.old_value.as_str())
        };
        let either = |field: &str, after: String, wanted: &dyn Fn(&str) -> bool| {
            wanted(&after) || before(field).is_some_and(wanted)
        };
        let pipeline_ok = self.pipeline_id.is_none_or(|pipeline| {
            either("pipeline_id", ticket.pipeline_id.to_string(), &|value| {
                value == pipeline.to_string()
            })
        });
        let stage_ok = self.stage_ids.is_empty()
            || either("stage_id", ticket.stage_id.to_string(), &|value| {
                value
                    .parse::<i64>()
                    .is_ok_and(|stage| self.stage_ids.contains(&stage))
            });
        let assignee_ok = self.assignee_id.as_deref().is_none_or(|assignee| {
            either("assignee_id", ticket.assignee_id.clone(), &|value| {
                value == assignee
            })
        });
        let organization_ok = self.organization_id.as_deref().is_none_or(|organization| {
            either(
                "organization_id",
                ticket.organization_id.clone(),
                &|value| value == organization,
            )
        });
        pipeline_ok && stage_ok && assignee_ok && organization_ok
    }
}

impl EventHub {
    /// Starts a WatchTickets stream after `after_event_id` (`None`: after the newest committed event). The
    /// starting point is fixed before this returns, so a write the caller makes once the call is answered is
    /// in the stream.
    pub async fn watch_tickets(
        self: &Arc<Self>,
        filter: TicketFilter,
        after_event_id: Option<i64>,
    ) -> Result<TicketWatch, Error> {
        let cursor = match after_event_id {
            Some(after) => after,
            None => self.store.last_event_id().await?,
        };
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(run_ticket_watch(Arc::clone(self), filter, cursor, tx));
        Ok(rx)
    }

    /// Starts a WatchCard stream for one card or every card of a group.
    pub fn watch_cards(
        self: &Arc<Self>,
        card_id: Option<i64>,
        group_id: Option<String>,
        after_version: i64,
    ) -> CardWatch {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(run_card_watch(
            Arc::clone(self),
            card_id,
            group_id,
            after_version,
            tx,
        ));
        rx
    }
}

/// Sends unless the client left or the server stops first; false means the stream is over. It waits for two
/// free slots and uses one, so the buffer always has room left for the final resumable status even when the
/// client has stopped reading.
async fn deliver<T>(
    tx: &mpsc::Sender<WatchItem<T>>,
    item: T,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let permits = tokio::select! {
        permits = tx.reserve_many(2) => permits,
        _ = stopped(stopping) => return false,
    };
    match permits {
        Ok(mut permits) => {
            if let Some(permit) = permits.next() {
                permit.send(WatchItem::Item(item));
            }
            true
        }
        Err(_) => false,
    }
}

async fn end<T>(tx: &mpsc::Sender<WatchItem<T>>, resume_after: i64, reason: &'static str) {
    // A full buffer means the client is not reading; it will not see the reason either way.
    let _ = tx.try_send(WatchItem::End {
        resume_after,
        reason,
    });
}

async fn run_ticket_watch(
    hub: Arc<EventHub>,
    filter: TicketFilter,
    mut cursor: i64,
    tx: mpsc::Sender<WatchItem<Arc<TicketEvent>>>,
) {
    let _open = crate::metrics::OpenStream::new("tickets");
    let mut stopping = hub.stopping.clone();
    loop {
        // Subscribe before reading the database, so nothing committed in between is missed.
        let mut live = hub.tickets.subscribe();
        loop {
            let page = match hub.store.events_after(cursor, hub.config.page_size).await {
                Ok(page) => page,
                Err(_) => return end(&tx, cursor, "the database is unavailable").await,
            };
            let complete = (page.len() as u64) < hub.config.page_size;
            for event in page {
                // The cursor moves only past what was delivered: it is what the client resumes from.
                let event_id = event.event_id;
                if filter.matches(&event) && !deliver(&tx, Arc::new(event), &mut stopping).await {
                    return end(&tx, cursor, "the server is shutting down").await;
                }
                cursor = event_id;
            }
            if complete {
                break;
            }
        }
        loop {
            let received = tokio::select! {
                _ = stopped(&mut stopping) => {
                    return end(&tx, cursor, "the server is shutting down").await;
                }
                _ = tx.closed() => return,
                received = live.recv() => received,
            };
            match received {
                Ok(event) => {
                    if event.event_id <= cursor {
                        continue;
                    }
                    let event_id = event.event_id;
                    if filter.matches(&event) && !deliver(&tx, event, &mut stopping).await {
                        return end(&tx, cursor, "the server is shutting down").await;
                    }
                    cursor = event_id;
                }
                Err(RecvError::Lagged(skipped)) => {
                    metrics::counter!(crate::metrics::LAG_RESYNCS, "kind" => "tickets")
                        .increment(1);
                    tracing::debug!(
                        skipped,
                        cursor,
                        "slow ticket stream goes back to the database"
                    );
                    break;
                }
                Err(RecvError::Closed) => {
                    return end(&tx, cursor, "the server is shutting down").await;
                }
            }
        }
    }
}

async fn run_card_watch(
    hub: Arc<EventHub>,
    card_id: Option<i64>,
    group_id: Option<String>,
    after_version: i64,
    tx: mpsc::Sender<WatchItem<Arc<(i64, CardRender)>>>,
) {
    let _open = crate::metrics::OpenStream::new("cards");
    let mut stopping = hub.stopping.clone();
    let wanted = |render: &CardRender| {
        card_id.is_none_or(|id| render.card_id == id)
            && group_id
                .as_deref()
                .is_none_or(|group| render.group_id == group)
    };
    // Per card, the newest version sent: renders arrive by two paths and each version goes out once.
    let mut sent: HashMap<i64, i64> = HashMap::new();
    let mut live = hub.cards.subscribe();
    let mut cursor = match hub.store.last_render_position().await {
        Ok(position) => position,
        Err(_) => return end(&tx, 0, "the database is unavailable").await,
    };
    let current = match hub.store.latest_renders(card_id, group_id.as_deref()).await {
        Ok(current) => current,
        Err(_) => {
            return end(
                &tx,
                0,
                "the card does not exist or the database is unavailable",
            )
            .await;
        }
    };
    for positioned in current {
        let render = positioned.render;
        if render.version > after_version {
            sent.insert(render.card_id, render.version);
            if !deliver(&tx, Arc::new((positioned.position, render)), &mut stopping).await {
                return end(&tx, 0, "the server is shutting down").await;
            }
        }
    }
    loop {
        let next = tokio::select! {
            _ = stopped(&mut stopping) => {
                return end(&tx, 0, "the server is shutting down").await;
            }
            _ = tx.closed() => return,
            received = live.recv() => received,
        };
        let batch = match next {
            Ok(item) => vec![item],
            Err(RecvError::Lagged(_)) => {
                metrics::counter!(crate::metrics::LAG_RESYNCS, "kind" => "cards").increment(1);
                // Fell behind: re-subscribe first, then read everything after the cursor from the
                // database, page by page, before following the channel again.
                live = hub.cards.subscribe();
                loop {
                    let page = match hub.store.renders_after(cursor, hub.config.page_size).await {
                        Ok(page) => page,
                        Err(_) => return end(&tx, 0, "the database is unavailable").await,
                    };
                    let complete = (page.len() as u64) < hub.config.page_size;
                    for row in page {
                        cursor = cursor.max(row.position);
                        let newest = sent
                            .get(&row.render.card_id)
                            .copied()
                            .unwrap_or(after_version);
                        if !wanted(&row.render) || row.render.version <= newest {
                            continue;
                        }
                        sent.insert(row.render.card_id, row.render.version);
                        if !deliver(&tx, Arc::new((row.position, row.render)), &mut stopping).await
                        {
                            return end(&tx, 0, "the server is shutting down").await;
                        }
                    }
                    if complete {
                        break;
                    }
                }
                Vec::new()
            }
            Err(RecvError::Closed) => return end(&tx, 0, "the server is shutting down").await,
        };
        for item in batch {
            let (position, render) = &*item;
            cursor = cursor.max(*position);
            let newest = sent.get(&render.card_id).copied().unwrap_or(after_version);
            if !wanted(render) || render.version <= newest {
                continue;
            }
            sent.insert(render.card_id, render.version);
            if !deliver(&tx, Arc::clone(&item), &mut stopping).await {
                return end(&tx, 0, "the server is shutting down").await;
            }
        }
    }
}
