//! The tailer and its broadcast channels.

use std::{sync::Arc, time::Duration};

use sea_orm::DbBackend;
use tokio::sync::{broadcast, watch};

use super::shared::LiveItem;
use crate::{
    domain::{Error, card::CardRender, event::TicketEvent},
    store::{
        Appended, CONFIG_CHANNEL, DatabaseHealth, GapGuard, OUTBOX_CHANNEL, OutboxTable, Store,
    },
};

/// How soon the tailer looks again while it waits at a hole that a rollback may have left (rollbacks wake
/// nobody; commits do, at once).
const HOLE_RECHECK: Duration = Duration::from_millis(10);

/// Tuning of the fan-out.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Events a stream may fall behind before it goes back to the database.
    pub channel_capacity: usize,
    /// How often the tailer looks at the outbox when nothing woke it.
    pub poll_interval: Duration,
    /// Rows read per query, by the tailer and by streams catching up.
    pub page_size: u64,
    /// Silence after which a stream sends a heartbeat (`--stream-heartbeat-secs`).
    pub heartbeat: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 4_096,
            poll_interval: Duration::from_secs(1),
            page_size: 500,
            heartbeat: Duration::from_secs(20),
        }
    }
}

/// Shared by every stream of the process.
pub struct EventHub {
    pub(super) store: Store,
    pub(super) config: HubConfig,
    pub(super) tickets: broadcast::Sender<LiveItem>,
    pub(super) cards: broadcast::Sender<Arc<(i64, CardRender)>>,
    /// Turns true when the server stops: streams end with a resumable status.
    pub(super) stopping: watch::Receiver<bool>,
}

impl EventHub {
    /// Starts the tailer (and on PostgreSQL the listener) for `store`; they stop when `stopping` turns true.
    pub async fn start(
        store: Store,
        config: HubConfig,
        stopping: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, Error> {
        let (tickets, _) = broadcast::channel(config.channel_capacity);
        let (cards, _) = broadcast::channel(config.channel_capacity);
        let hub = Arc::new(Self {
            store,
            config,
            tickets,
            cards,
            stopping,
        });
        let (event_cursor, render_cursor) = hub.store.outbox_start().await?;
        let horizon = hub.store.outbox_horizon();
        horizon.advance(OutboxTable::Events, event_cursor);
        horizon.advance(OutboxTable::Renders, render_cursor);
        if hub.store.backend() == DbBackend::Postgres {
            tokio::spawn(listen(Arc::clone(&hub)));
            tokio::spawn(announce(Arc::clone(&hub)));
        }
        tokio::spawn(tail(Arc::clone(&hub), event_cursor, render_cursor));
        tokio::spawn(wake_streams_when_interrupted(
            hub.tickets.clone(),
            hub.stopping.clone(),
            hub.store.health(),
        ));
        Ok(hub)
    }

    /// Silence after which a stream sends a heartbeat.
    pub fn heartbeat(&self) -> Duration {
        self.config.heartbeat
    }

    /// Streams currently following the ticket channel (for metrics and tests).
    pub fn ticket_subscribers(&self) -> usize {
        self.tickets.receiver_count()
    }
}

/// Where the tailer stands in one outbox table.
struct Tail {
    table: OutboxTable,
    cursor: i64,
    gaps: GapGuard,
}

impl Tail {
    fn new(table: OutboxTable, cursor: i64) -> Self {
        Self {
            table,
            cursor,
            gaps: GapGuard::default(),
        }
    }

    /// How far the next read may go.
    async fn reach(&mut self, hub: &EventHub) -> Result<Reach, Error> {
        let page = hub.config.page_size;
        let probed = hub
            .store
            .probe_positions(self.table, self.cursor, page)
            .await?;
        let Some(snapshot) = probed.snapshot else {
            return Ok(Reach::Anything);
        };
        let (taken, unwatched) = self
            .gaps
            .passable(self.cursor, &probed.positions, &snapshot);
        if let Some(seen_up_to) = unwatched {
            let fresh_xid = hub.store.fresh_xid().await?;
            self.gaps.watch(seen_up_to, snapshot, fresh_xid);
        }
        Ok(match taken.checked_sub(1) {
            None => Reach::Nothing,
            Some(last) => Reach::UpTo {
                position: probed.positions[last],
                more: taken as u64 == page,
            },
        })
    }

    /// Reads the next page of this table up to where it may; returns the rows and whether more may be waiting.
    /// The cursor (and the process's horizon) moves before the rows are handed out, so a stream that reads the
    /// horizon after subscribing gets every later row from the channel.
    async fn next_page<T>(
        &mut self,
        hub: &EventHub,
        read: impl AsyncFnOnce(i64, i64, u64) -> Result<Vec<T>, Error>,
        position_of: impl Fn(&T) -> i64,
    ) -> Result<(Vec<T>, bool), Error> {
        let page = hub.config.page_size;
        let (rows, more) = match self.reach(hub).await? {
            Reach::Nothing => return Ok((Vec::new(), false)),
            Reach::UpTo { position, more } => {
                let rows = read(self.cursor, position, page).await?;
                // Every position up to `position` is final: those not read never will be.
                self.cursor = position;
                (rows, more)
            }
            Reach::Anything => {
                let rows = read(self.cursor, i64::MAX, page).await?;
                if let Some(last) = rows.last() {
                    self.cursor = position_of(last);
                }
                let more = rows.len() as u64 == page;
                (rows, more)
            }
        };
        let horizon = hub.store.outbox_horizon();
        if horizon.advance(self.table, self.cursor) {
            hub.store.delivery_signal().notify_waiters();
        }
        Ok((rows, more))
    }
}

/// How far a tailer may read.
enum Reach {
    /// Held at a hole (or nothing new).
    Nothing,
    /// Up to this position, which it has seen; `more` when the probe was a full page.
    UpTo { position: i64, more: bool },
    /// Whatever is there: positions commit in order (SQLite).
    Anything,
}

/// Reads new outbox rows whenever woken and publishes them in order.
async fn tail(hub: Arc<EventHub>, event_cursor: i64, render_cursor: i64) {
    let signal = hub.store.outbox_signal();
    let mut stopping = hub.stopping.clone();
    let mut events = Tail::new(OutboxTable::Events, event_cursor);
    let mut renders = Tail::new(OutboxTable::Renders, render_cursor);
    // The first round reads everything that may have committed before the tailer started.
    let mut wanted = Appended::ALL;
    loop {
        while wanted.any() {
            match publish_new(&hub, &mut events, &mut renders, wanted).await {
                // A full page: more of that kind may be waiting.
                Ok(full) => wanted = full,
                Err(error) => {
                    tracing::warn!(%error, "reading the outbox failed; retrying");
                    break;
                }
            }
        }
        let holding = Appended {
            events: events.gaps.holding(),
            renders: renders.gaps.holding(),
        };
        let wait = if holding.any() {
            HOLE_RECHECK
        } else {
            hub.config.poll_interval
        };
        wanted = tokio::select! {
            _ = signal.notified() => signal.take_appended(),
            // The safety net for a lost notification (the listener reconnecting) looks at both tables; a hole
            // is looked at again soon.
            _ = tokio::time::sleep(wait) => if holding.any() { holding } else { Appended::ALL },
            _ = stopped(&mut stopping) => return,
        };
    }
}

/// Publishes one page of each `wanted` kind; returns the kinds whose page was full.
async fn publish_new(
    hub: &EventHub,
    events: &mut Tail,
    renders: &mut Tail,
    wanted: Appended,
) -> Result<Appended, Error> {
    let mut full = Appended::default();
    if wanted.events {
        let (read, more) = events
            .next_page(
                hub,
                async |after, up_to, limit| hub.store.events_between(after, up_to, limit).await,
                |event: &TicketEvent| event.event_id,
            )
            .await?;
        full.events = more;
        for event in read {
            // No receivers is not an error: nobody is watching right now.
            let _ = hub.tickets.send(LiveItem::Event(Arc::new(event.into())));
            metrics::counter!(crate::metrics::EVENTS_FANNED_OUT, "kind" => "tickets").increment(1);
        }
    }
    if wanted.renders {
        let (read, more) = renders
            .next_page(
                hub,
                async |after, up_to, limit| hub.store.renders_between(after, up_to, limit).await,
                |positioned: &crate::store::PositionedRender| positioned.position,
            )
            .await?;
        full.renders = more;
        for positioned in read {
            let _ = hub
                .cards
                .send(Arc::new((positioned.position, positioned.render)));
        }
    }
    Ok(full)
}

/// Tells the other replicas what this process's commits appended, one `NOTIFY` for every commit that landed
/// while the previous one was being sent.
async fn announce(hub: Arc<EventHub>) {
    let signal = hub.store.outbox_signal();
    let mut stopping = hub.stopping.clone();
    loop {
        tokio::select! {
            () = signal.to_announce() => {}
            _ = stopped(&mut stopping) => return,
        }
        let appended = signal.take_unannounced();
        if !appended.any() {
            continue;
        }
        if let Err(error) = hub.store.announce(appended).await {
            // The other replicas' poll picks the rows up within a second.
            tracing::warn!(%error, "announcing outbox rows to the other replicas failed");
        }
    }
}

/// Turns PostgreSQL notifications from any replica into wake-ups of this process's tailer.
async fn listen(hub: Arc<EventHub>) {
    let signal = hub.store.outbox_signal();
    let mut stopping = hub.stopping.clone();
    loop {
        let connected = async {
            let mut listener =
                sea_orm::sqlx::postgres::PgListener::connect(hub.store.url()).await?;
            listener.listen(OUTBOX_CHANNEL).await?;
            listener.listen(CONFIG_CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot LISTEN for outbox notifications; polling until it works");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = stopped(&mut stopping) => return,
                }
            }
        };
        // Whatever committed while we were not listening is picked up by this wake-up.
        signal.notify(Appended::ALL);
        hub.store.config_listening(true);
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(notification) if notification.channel() == CONFIG_CHANNEL => {
                        hub.store.config_notified()
                    }
                    Ok(notification) => signal.notify_from_channel(notification.payload()),
                    Err(error) => {
                        // Until it is back, reads cannot know when the configuration cache goes stale.
                        hub.store.config_listening(false);
                        tracing::warn!(%error, "outbox listener lost its connection; reconnecting");
                        break;
                    }
                },
                _ = stopped(&mut stopping) => return,
            }
        }
    }
}

/// Puts a [`LiveItem::WakeUp`] on the ticket channel when the server starts stopping and at the start of each
/// outage of the database.
async fn wake_streams_when_interrupted(
    tickets: broadcast::Sender<LiveItem>,
    mut stopping: watch::Receiver<bool>,
    mut database: DatabaseHealth,
) {
    loop {
        tokio::select! {
            () = stopped(&mut stopping) => {
                let _ = tickets.send(LiveItem::WakeUp);
                return;
            }
            // Streams find an outage already going on when they open by themselves; this is for those waiting.
            up = database.changed() => if !up {
                let _ = tickets.send(LiveItem::WakeUp);
            }
        }
    }
}

/// Completes when the server starts stopping. Returning `()` drops the watch guard before any later await
/// (it is not `Send`).
pub(super) async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}
