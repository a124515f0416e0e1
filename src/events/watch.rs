//! The streams behind WatchTickets and WatchCard.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    pin::Pin,
    sync::Arc,
};

use futures_util::Stream;
use tokio::sync::{
    broadcast::{self, error::RecvError},
    mpsc, watch,
};

use super::{
    SharedEvent,
    hub::{EventHub, stopped},
    shared::LiveItem,
};
use crate::{
    domain::{
        Error,
        card::CardRender,
        event::{TicketEvent, history_time},
        field::TicketField,
    },
    store::DatabaseHealth,
};

/// Why a stream ended when the database could not be read or the health probe saw it go away.
const DATABASE_UNREACHABLE: &str = "the database is unavailable";

/// Trailer naming the last event id a stream delivered; reconnecting with it misses nothing.
pub const RESUME_TRAILER: &str = "ticketd-resume-after-event-id";
/// Messages buffered per WatchCard stream between its task and the connection.
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

/// The stream of a WatchTickets call. It is polled by the connection itself, so a delivery costs one wake-up
/// of the connection and no task or channel of its own; HTTP/2 flow control is its buffer.
pub type TicketWatch = Pin<Box<dyn Stream<Item = WatchItem<Arc<SharedEvent>>> + Send>>;
/// The stream of a WatchCard call.
pub type CardWatch = mpsc::Receiver<WatchItem<Arc<(i64, CardRender)>>>;

/// Which ticket events a stream wants; every field filter that is set must match the ticket before or after
/// the change.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub ticket_ids: HashSet<i64>,
    /// Wanted values of fields, as [`TicketField::text`] writes them (the form history records).
    pub fields: BTreeMap<TicketField, HashSet<String>>,
}

impl TicketFilter {
    /// Whether `event` passes every filter that is set.
    pub fn matches(&self, event: &TicketEvent) -> bool {
        if !self.ticket_ids.is_empty() && !self.ticket_ids.contains(&event.ticket_id) {
            return false;
        }
        let Some(ticket) = &event.ticket else {
            // Without a snapshot only the id filter can be judged.
            return self.fields.is_empty();
        };
        self.fields.iter().all(|(field, wanted)| {
            let before = event
                .changes
                .iter()
                .find(|change| &change.field == field)
                .map(|change| &change.old_value);
            wanted.contains(&field.text(ticket, history_time))
                || before.is_some_and(|value| wanted.contains(value))
        })
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
        // Subscribe before fixing the cursor, so nothing committed in between is missed. "Now" is the newest
        // committed event: later ones come from the channel once the tailer has passed them.
        let live = self.tickets.subscribe();
        let cursor = match after_event_id {
            Some(after) => after,
            None => self.store.last_event_id().await?,
        };
        let state = TicketWatchState {
            hub: Arc::clone(self),
            stopping: self.stopping.clone(),
            database: self.store.health(),
            filter,
            cursor,
            live,
            backlog: VecDeque::new(),
            catching_up: true,
            last_page_read: false,
            ended: false,
            _open: crate::metrics::OpenStream::new("tickets"),
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |mut state| async move {
                let item = state.next_item().await?;
                Some((item, state))
            },
        )))
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

/// Where a WatchTickets stream stands between two messages.
struct TicketWatchState {
    hub: Arc<EventHub>,
    stopping: watch::Receiver<bool>,
    /// While the database is unreachable nothing new can be read: the stream ends, resumable, rather than
    /// fall silent.
    database: DatabaseHealth,
    filter: TicketFilter,
    /// The last event id sent (or passed over by the filter): what the client resumes from.
    cursor: i64,
    live: broadcast::Receiver<LiveItem>,
    /// Events read from the database and not yet sent.
    backlog: VecDeque<TicketEvent>,
    /// Reading the database (at the start, or after falling behind the channel) rather than the channel.
    catching_up: bool,
    /// The last page read was not full: once `backlog` is empty, the database has nothing more.
    last_page_read: bool,
    ended: bool,
    _open: crate::metrics::OpenStream,
}

impl TicketWatchState {
    /// The next message, or `None` once the stream has ended.
    async fn next_item(&mut self) -> Option<WatchItem<Arc<SharedEvent>>> {
        if self.ended {
            return None;
        }
        loop {
            if *self.stopping.borrow() {
                return Some(self.end("the server is shutting down"));
            }
            if !self.database.is_up() {
                return Some(self.end(DATABASE_UNREACHABLE));
            }
            if self.catching_up {
                if let Some(event) = self.backlog.pop_front() {
                    self.cursor = event.event_id;
                    if self.filter.matches(&event) {
                        return Some(WatchItem::Item(Arc::new(event.into())));
                    }
                    continue;
                }
                if self.last_page_read {
                    self.catching_up = false;
                    continue;
                }
                let page_size = self.hub.config.page_size;
                // Only up to the horizon: past it the channel delivers, in order.
                let horizon = self.hub.store.outbox_horizon().events();
                match self
                    .hub
                    .store
                    .events_between(self.cursor, horizon, page_size)
                    .await
                {
                    Ok(page) => {
                        self.last_page_read = (page.len() as u64) < page_size;
                        self.backlog = page.into();
                    }
                    Err(_) => return Some(self.end(DATABASE_UNREACHABLE)),
                }
                continue;
            }
            // Shutdown and outage arrive on the channel too, as a wake-up; the top of the loop reads both.
            match self.live.recv().await {
                Ok(LiveItem::WakeUp) => {}
                Ok(LiveItem::Event(event)) => {
                    if event.event_id <= self.cursor {
                        continue;
                    }
                    self.cursor = event.event_id;
                    if self.filter.matches(&event) {
                        return Some(WatchItem::Item(event));
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    metrics::counter!(crate::metrics::LAG_RESYNCS, "kind" => "tickets")
                        .increment(1);
                    tracing::debug!(
                        skipped,
                        cursor = self.cursor,
                        "slow ticket stream goes back to the database"
                    );
                    // Re-subscribe first, then read everything after the cursor, then follow again.
                    self.live = self.hub.tickets.subscribe();
                    self.catching_up = true;
                    self.last_page_read = false;
                }
                Err(RecvError::Closed) => return Some(self.end("the server is shutting down")),
            }
        }
    }

    fn end(&mut self, reason: &'static str) -> WatchItem<Arc<SharedEvent>> {
        self.ended = true;
        WatchItem::End {
            resume_after: self.cursor,
            reason,
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
    let mut database = hub.store.health();
    let wanted = |render: &CardRender| {
        card_id.is_none_or(|id| render.card_id == id)
            && group_id
                .as_deref()
                .is_none_or(|group| render.group_id == group)
    };
    // Per card, the newest version sent: renders arrive by two paths and each version goes out once.
    let mut sent: HashMap<i64, i64> = HashMap::new();
    let mut live = hub.cards.subscribe();
    let mut cursor = hub.store.outbox_horizon().renders();
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
            () = database.went_down() => return end(&tx, 0, DATABASE_UNREACHABLE).await,
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
                    let horizon = hub.store.outbox_horizon().renders();
                    let page = match hub
                        .store
                        .renders_between(cursor, horizon, hub.config.page_size)
                        .await
                    {
                        Ok(page) => page,
                        Err(_) => return end(&tx, 0, DATABASE_UNREACHABLE).await,
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
