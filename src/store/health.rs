//! Whether the database can be reached right now, known ahead of the next call instead of learned by each call
//! waiting out the pool's acquire timeout.
//!
//! A probe checks PostgreSQL every [`PROBE_INTERVAL`] over a connection of its own, outside the pool, so a
//! pool busy with slow queries never looks like an outage and an outage is seen even when no call is running.
//! One failed probe (an error, or no answer within [`PROBE_TIMEOUT`], which is how a network that drops packets
//! shows) marks the database down; one answered probe marks it up again. While it is down the server reports
//! NOT_SERVING, refuses calls at once with UNAVAILABLE, and ends streams resumably (see `server.rs`,
//! `api::availability` and `events`). The cost: one idle connection and one round trip a second per replica,
//! and up to `PROBE_INTERVAL + PROBE_TIMEOUT` before an outage is noticed.
//!
//! SQLite is a file in the process: there is no connection to lose, so it is always up and no probe runs.

use std::time::Duration;

use sea_orm::{
    DbBackend,
    sqlx::{Connection, postgres::PgConnection},
};
use tokio::sync::watch;

use super::Store;

/// How often the probe asks while the database answers, and how soon it asks again once it does not.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(1_000);
/// How long a probe (connecting included) may take before the database counts as unreachable. A healthy
/// database answers a ping in milliseconds even under load.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the database's reachability; cheap to clone.
#[derive(Clone)]
pub struct DatabaseHealth {
    up: watch::Receiver<bool>,
}

impl DatabaseHealth {
    /// Whether the last probe was answered.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Completes once the database is (or already was) marked unreachable.
    pub async fn went_down(&mut self) {
        // An error means the probe's sender is gone, which happens only when the store is dropped.
        if self.up.wait_for(|up| !*up).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Completes at the next change of reachability; returns the new state.
    pub async fn changed(&mut self) -> bool {
        if self.up.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        *self.up.borrow_and_update()
    }
}

impl Store {
    /// The database's reachability as the probe last saw it.
    pub fn health(&self) -> DatabaseHealth {
        DatabaseHealth {
            up: self.reachable.subscribe(),
        }
    }

    /// Probes the database until `stopping` turns true, publishing what it sees to [`Store::health`].
    pub async fn probe_health(&self, mut stopping: watch::Receiver<bool>) {
        if self.backend() != DbBackend::Postgres {
            return;
        }
        let mut connection: Option<PgConnection> = None;
        loop {
            let answered = tokio::time::timeout(PROBE_TIMEOUT, probe(&self.url, &mut connection))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}").into()));
            if answered.is_err() {
                // The connection may be half-closed or wedged: start from a new one next time.
                connection = None;
            }
            let up = answered.is_ok();
            self.reachable.send_if_modified(|was_up| {
                let changed = *was_up != up;
                match &answered {
                    Err(error) if changed => tracing::warn!(
                        %error,
                        "database unreachable: reporting NOT_SERVING and refusing calls until it answers"
                    ),
                    Ok(()) if changed => tracing::info!("database reachable again: serving"),
                    _ => {}
                }
                *was_up = up;
                changed
            });
            metrics::gauge!(crate::metrics::DATABASE_UP).set(if up { 1.0 } else { 0.0 });
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
        }
    }
}

/// One round trip on the probe's own connection, opening it first when there is none.
async fn probe(
    url: &str,
    connection: &mut Option<PgConnection>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let open = match connection {
        Some(open) => open,
        None => connection.insert(PgConnection::connect(url).await?),
    };
    open.ping().await?;
    Ok(())
}
