//! Whether the database can be reached right now, known ahead of the next call instead of learned by each call
//! waiting out the pool's acquire timeout.
//!
//! A probe checks PostgreSQL every [`PROBE_INTERVAL`] over a connection of its own, outside the pool, so a
//! pool busy with slow queries never looks like an outage and an outage is seen even when no call is running.
//! One failed probe (an error, or no answer within [`PROBE_TIMEOUT`], which is how a network that drops packets
//! shows) marks the database down; one answered probe marks it up again. While it is down the server reports
//! NOT_SERVING, refuses calls at once with UNAVAILABLE, and ends streams resumably (see `server.rs`,
//! `api::availability` and `events`). The cost: one idle connection and one round trip a second per replica,
//! and up to `PROBE_INTERVAL + PROBE_TIMEOUT` before an outage is noticed. A database that refuses the probe's
//! connection for want of slots answered, so it counts as up.
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

/// SQLSTATE of PostgreSQL's "sorry, too many clients already".
const TOO_MANY_CONNECTIONS: &str = "53300";

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
        None => match PgConnection::connect(url).await {
            Ok(opened) => connection.insert(opened),
            // The server answered, and turned a new connection away because every slot is taken: it is up,
            // and the pool's connections keep serving calls. Reporting an outage would refuse them all.
            Err(sea_orm::sqlx::Error::Database(refusal))
                if refusal.code().as_deref() == Some(TOO_MANY_CONNECTIONS) =>
            {
                tracing::debug!(%refusal, "health probe: database up but out of connection slots");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        },
    };
    open.ping().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::*;

    /// Answers one client as a PostgreSQL server with no free slot does: startup refused with `code`.
    async fn refuse_startup(mut client: TcpStream, code: &str) {
        loop {
            let mut length = [0u8; 4];
            client
                .read_exact(&mut length)
                .await
                .expect("message length");
            let mut body = vec![0u8; u32::from_be_bytes(length) as usize - 4];
            client.read_exact(&mut body).await.expect("message body");
            // SSLRequest: no TLS here, and the client goes on with the startup message.
            if body == [0x04, 0xd2, 0x16, 0x2f] {
                client.write_all(b"N").await.expect("refuse TLS");
                continue;
            }
            break;
        }
        let mut fields = Vec::new();
        for (tag, value) in [
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', code),
            (b'M', "sorry, too many clients already"),
        ] {
            fields.push(tag);
            fields.extend_from_slice(value.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut message = vec![b'E'];
        message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(&fields);
        client.write_all(&message).await.expect("error response");
    }

    async fn probe_of_a_server_refusing_with(code: &'static str) -> bool {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "postgres://postgres@{}/postgres",
            listener.local_addr().expect("address")
        );
        let server = tokio::spawn(async move {
            let (client, _) = listener.accept().await.expect("accept");
            refuse_startup(client, code).await;
        });
        let answered = probe(&url, &mut None).await.is_ok();
        server.await.expect("fake server");
        answered
    }

    #[tokio::test]
    async fn a_database_out_of_connection_slots_is_up() {
        assert!(probe_of_a_server_refusing_with(TOO_MANY_CONNECTIONS).await);
    }

    #[tokio::test]
    async fn a_database_refusing_for_another_reason_is_down() {
        // 57P03: cannot_connect_now, as while the server starts or shuts down.
        assert!(!probe_of_a_server_refusing_with("57P03").await);
    }
}
