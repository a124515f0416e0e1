//! The tailer and its broadcast channels.

use std::{sync::Arc, time::Duration};

use sea_orm::DbBackend;
use tokio::sync::{broadcast, watch};

use crate::{
    domain::{Error, card::CardRender, event::TicketEvent},
    store::{Appended, CONFIG_CHANNEL, OUTBOX_CHANNEL, Store},
};

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
    pub(super) tickets: broadcast::Sender<Arc<TicketEvent>>,
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
        let event_cursor = hub.store.last_event_id().await?;
        let render_cursor = hub.store.last_render_position().await?;
        if hub.store.backend() == DbBackend::Postgres {
            tokio::spawn(listen(Arc::clone(&hub)));
        }
        tokio::spawn(tail(Arc::clone(&hub), event_cursor, render_cursor));
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

/// Reads new outbox rows whenever woken and publishes them in order.
async fn tail(hub: Arc<EventHub>, mut event_cursor: i64, mut render_cursor: i64) {
    let signal = hub.store.outbox_signal();
    let mut stopping = hub.stopping.clone();
    // The first round reads everything that may have committed before the tailer started.
    let mut wanted = Appended::ALL;
    loop {
        while wanted.any() {
            match publish_new(&hub, &mut event_cursor, &mut render_cursor, wanted).await {
                // A full page: more of that kind may be waiting.
                Ok(full) => wanted = full,
                Err(error) => {
                    tracing::warn!(%error, "reading the outbox failed; retrying");
                    break;
                }
            }
        }
        wanted = tokio::select! {
            _ = signal.notified() => signal.take_appended(),
            // The safety net for a lost notification (the listener reconnecting) looks at both tables.
            _ = tokio::time::sleep(hub.config.poll_interval) => Appended::ALL,
            _ = stopped(&mut stopping) => return,
        };
    }
}

/// Publishes one page of each `wanted` kind; returns the kinds whose page was full.
async fn publish_new(
    hub: &EventHub,
    event_cursor: &mut i64,
    render_cursor: &mut i64,
    wanted: Appended,
) -> Result<Appended, Error> {
    let page = hub.config.page_size;
    let mut full = Appended::default();
    if wanted.events {
        let events = hub.store.events_after(*event_cursor, page).await?;
        full.events = events.len() as u64 == page;
        for event in events {
            *event_cursor = event.event_id;
            // No receivers is not an error: nobody is watching right now.
            let _ = hub.tickets.send(Arc::new(event));
            metrics::counter!(crate::metrics::EVENTS_FANNED_OUT, "kind" => "tickets").increment(1);
        }
    }
    if wanted.renders {
        let renders = hub.store.renders_after(*render_cursor, page).await?;
        full.renders = renders.len() as u64 == page;
        for positioned in renders {
            *render_cursor = positioned.position;
            let _ = hub
                .cards
                .send(Arc::new((positioned.position, positioned.render)));
        }
    }
    Ok(full)
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

/// Completes when the server starts stopping. Returning `()` drops the watch guard before any later await
/// (it is not `Send`).
pub(super) async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}
