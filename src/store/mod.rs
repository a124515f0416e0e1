//! Persistence with sea-orm. Every request runs in at most one transaction; the API layer never sees SQL.

mod access;
mod agents;
mod associations;
mod cards;
mod comments;
mod config;
mod entities;
mod escalation;
mod followers;
mod gaps;
mod health;
mod history;
mod idempotency;
mod import;
mod open;
mod outbox;
mod pipelines;
mod properties;
mod rules;
mod search;
mod shared_commit;
mod tickets;
mod time_entries;
mod webhooks;

use std::{sync::Arc, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, RuntimeErr, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait, sqlx,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use tokio::sync::OwnedMutexGuard;

use crate::domain::{Error, RequestKey};
use idempotency::Claim;

pub use cards::{CardChanges, NewCard, NewCardTemplate};
pub use config::CONFIG_CHANNEL;
pub use gaps::{GapGuard, Snapshot};
pub use health::DatabaseHealth;
pub use open::SqliteLock;
pub use outbox::{
    Appended, OUTBOX_CHANNEL, OutboxHorizon, OutboxSignal, OutboxTable, PositionedRender,
    ProbedPositions,
};
pub use properties::PropertyChanges;
pub use webhooks::{AttemptOutcome, ClaimedDelivery, RESPONSE_KEPT_BYTES};

/// Key of the PostgreSQL advisory lock that lets exactly one replica migrate at a time ("tick" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7469_636b;

/// Where the database is and how many connections to keep open to it; the caller decides, the store obeys.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// `sqlite://PATH?mode=rwc` or `postgres://USER@HOST/DB`.
    pub url: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

/// The database behind the service.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    url: String,
    /// Wakes this process's outbox tailer after a commit that appended to the outbox.
    signal: Arc<OutboxSignal>,
    /// SQLite allows one writer at a time and answers a second one with "database is locked" instead of
    /// waiting when both began by reading. Queuing write transactions here keeps that error away from
    /// clients, and lets queued writes share a commit ([`shared_commit`]); PostgreSQL needs no gate.
    write_gate: Option<Arc<shared_commit::WriteGate>>,
    /// Wakes this process's webhook workers when deliveries become claimable.
    delivery_signal: Arc<tokio::sync::Notify>,
    /// How far this process's tailer has read the outbox.
    horizon: Arc<OutboxHorizon>,
    /// What the health probe last saw (see [`health`]); starts up, since connecting just succeeded.
    reachable: Arc<tokio::sync::watch::Sender<bool>>,
    /// Pipelines, definitions, rules and webhooks as this replica last read them (see [`config`]).
    config: Arc<config::ConfigCache>,
}

/// A write transaction, holding the SQLite write gate (when there is one) until it ends. History entries
/// and card renders it produces wait in `outbox` and are appended just before commit (see [`outbox`]).
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _gate: Option<OwnedMutexGuard<shared_commit::GateState>>,
    outbox: std::sync::Mutex<outbox::Pending>,
    signal: Arc<OutboxSignal>,
    delivery_signal: Arc<tokio::sync::Notify>,
    horizon: Arc<OutboxHorizon>,
    /// The newest event id of the transaction when it enqueued webhook deliveries, else 0.
    enqueued: std::sync::atomic::AtomicI64,
    /// Whether the transaction is known to hold its PostgreSQL transaction id (see [`gaps`]).
    has_xid: std::sync::atomic::AtomicBool,
    config: std::sync::Mutex<config::TxnConfig>,
    cache: Arc<config::ConfigCache>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

impl WriteTxn {
    /// Appends the pending outbox entries (cards bound to changed tickets follow them first), then makes
    /// everything durable at once and wakes the tailer.
    pub async fn commit(self) -> Result<(), Error> {
        rules::run(&self).await?;
        let appended = outbox::flush(&self).await?;
        let changed_config = self.changed_config();
        let committed = self.txn.commit().await;
        if changed_config {
            // Before the SQLite write gate is let go (with `self`), so the next write sees the new generation;
            // even after a failed COMMIT, which may have landed.
            self.cache.invalidate();
        }
        committed?;
        if appended.any() {
            self.signal.committed(appended);
        }
        let enqueued = self.enqueued.load(std::sync::atomic::Ordering::Acquire);
        // Workers claim a delivery once the tailer has passed its event; if it already has, wake them here.
        if enqueued > 0 && self.horizon.deliveries_enqueued_up_to(enqueued) {
            self.delivery_signal.notify_waiters();
        }
        Ok(())
    }

    /// Notes that webhook deliveries were enqueued for events up to `event_id`.
    fn deliveries_enqueued(&self, event_id: i64) {
        self.enqueued
            .fetch_max(event_id, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Store {
    /// Connects with settings suited to each backend.
    pub async fn connect(settings: &ConnectSettings) -> Result<Self, DbErr> {
        let sqlite = open::SqliteUrl::parse(&settings.url);
        match &sqlite {
            Some(open::SqliteUrl {
                file: Some(file), ..
            }) => open::check_sqlite_directory(file)?,
            Some(_) => {}
            None => open::check_postgres(&settings.url).await?,
        }
        // A new user's `sqlite:///path/new.db` creates the file, as the default URL's `mode=rwc` does; an
        // explicit `mode=rw` or `mode=ro` is obeyed.
        let create_if_missing = sqlite.as_ref().is_some_and(|url| !url.explicit_mode);
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            // Statements are logged at DEBUG under the `sqlx` target: `--log-level info,sqlx=debug` shows them.
            .sqlx_logging(true)
            .sqlx_logging_level(log::LevelFilter::Debug)
            // WAL lets readers run beside the writer; FULL sync makes an acknowledged commit survive a power
            // cut, not just a crash of the process.
            .map_sqlx_sqlite_opts(move |options| {
                let options = options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                if create_if_missing {
                    options.create_if_missing(true)
                } else {
                    options
                }
            });
        let db = match (Database::connect(options).await, &sqlite) {
            (Ok(db), _) => db,
            (
                Err(error),
                Some(open::SqliteUrl {
                    file: Some(file), ..
                }),
            ) => return Err(open::sqlite_open_error(file, error)),
            (Err(error), _) => return Err(error),
        };
        let write_gate = (db.get_database_backend() == DbBackend::Sqlite)
            .then(|| Arc::new(shared_commit::WriteGate::default()));
        let config = Arc::new(config::ConfigCache::new(db.get_database_backend()));
        Ok(Self {
            db,
            url: settings.url.clone(),
            signal: Arc::new(OutboxSignal::default()),
            delivery_signal: Arc::default(),
            horizon: Arc::default(),
            config,
            write_gate,
            reachable: Arc::new(tokio::sync::watch::Sender::new(true)),
        })
    }

    /// The signal raised after every commit that appended to the outbox.
    pub fn outbox_signal(&self) -> Arc<OutboxSignal> {
        Arc::clone(&self.signal)
    }

    /// The connection URL (the PostgreSQL listener opens its own connection with it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connections of the pool: (open, idle).
    pub fn pool_usage(&self) -> (usize, usize) {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size() as usize, pool.num_idle())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size() as usize, pool.num_idle())
            }
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Applies pending migrations. On PostgreSQL an advisory lock makes replicas that start together take
    /// turns; the later ones find nothing left to do.
    pub async fn migrate(&self) -> Result<(), DbErr> {
        if self.backend() != DbBackend::Postgres {
            return Migrator::up(&self.db, None).await;
        }
        let lock_holder = self.db.begin().await?;
        lock_holder
            .execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await?;
        let outcome = Migrator::up(&self.db, None).await;
        lock_holder.commit().await?;
        outcome
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }

    /// Closes every pooled connection.
    pub async fn close(self) -> Result<(), DbErr> {
        self.db.close().await
    }

    /// Runs `work` in one write transaction guarded by `key`: a retry of an already answered request gets the
    /// saved answer and runs nothing; otherwise the change and its saved answer commit together.
    async fn write<T>(
        &self,
        key: Option<&RequestKey>,
        work: impl AsyncFnOnce(&WriteTxn) -> Result<T, Error>,
    ) -> Result<T, Error>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        if let Some(gate) = &self.write_gate {
            return self.write_shared(gate, key, work).await;
        }
        let txn = self.begin_write().await?;
        if let Claim::Replay(saved) = idempotency::claim(&txn, key).await? {
            return Ok(saved);
        }
        let result = work(&txn).await?;
        idempotency::complete(&txn, key, &result).await?;
        txn.commit().await?;
        Ok(result)
    }

    /// [`Self::write`] for changes of what [`config`] caches: the transaction reads its own configuration, and
    /// its commit invalidates this replica's cache (other replicas learn of it through the generation).
    async fn write_config<T>(
        &self,
        key: Option<&RequestKey>,
        work: impl AsyncFnOnce(&WriteTxn) -> Result<T, Error>,
    ) -> Result<T, Error>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        self.write(key, async |txn| {
            txn.config_changed();
            work(txn).await
        })
        .await
    }

    /// [`Self::write`] for writes that answer with tickets: the rules their events set off run before the
    /// answer is taken (and saved for retries), so the caller gets each ticket as it commits, rules' changes
    /// and etag included.
    async fn write_tickets<T>(
        &self,
        key: Option<&RequestKey>,
        work: impl AsyncFnOnce(&WriteTxn) -> Result<T, Error>,
    ) -> Result<T, Error>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + rules::IntoCommitted,
    {
        self.write(key, async |txn| {
            let answer = work(txn).await?;
            rules::run(txn).await?;
            Ok(answer.into_committed(txn))
        })
        .await
    }

    /// A write transaction of its own (on SQLite, after any shared commit in progress).
    async fn begin_write(&self) -> Result<WriteTxn, Error> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.lock_alone().await),
            None => None,
        };
        self.begin_transaction(gate).await
    }

    async fn begin_transaction(
        &self,
        gate: Option<OwnedMutexGuard<shared_commit::GateState>>,
    ) -> Result<WriteTxn, Error> {
        // IMMEDIATE takes SQLite's write lock at BEGIN, where the busy timeout applies; a deferred transaction
        // that reads first and then writes would get "database is locked" at once if another process (a
        // `ticketd migrate`, a backup) held the lock.
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = self.db.begin_with_options(options).await?;
        Ok(WriteTxn {
            txn,
            _gate: gate,
            outbox: std::sync::Mutex::default(),
            signal: Arc::clone(&self.signal),
            delivery_signal: Arc::clone(&self.delivery_signal),
            horizon: Arc::clone(&self.horizon),
            enqueued: Default::default(),
            has_xid: Default::default(),
            config: Default::default(),
            cache: Arc::clone(&self.config),
        })
    }
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        if is_connection_fault(&error) {
            Error::Unavailable(error.to_string())
        } else {
            Error::internal(error)
        }
    }
}

/// True when `error` says the database could not be reached, dropped the connection or is shutting down, rather
/// than that a statement failed: the request itself was fine, so a client may retry it (with its request id, a
/// write whose COMMIT was cut off replays instead of running twice).
fn is_connection_fault(error: &DbErr) -> bool {
    let runtime = match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(error) = runtime else {
        return false;
    };
    match &**error {
        // A reset, EOF or broken pipe, a failed TLS handshake, a reply cut off mid-message, or the pool itself
        // unable to hand out a connection.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            let code = code.as_ref();
            match error.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                // SQLITE_BUSY and SQLITE_LOCKED (and their extended codes): another process holds the file.
                Some(_) => code
                    .parse::<i32>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
                // SQLSTATE class 08 (connection exception), 57P01-03 (administrator or crash shutdown, cannot
                // connect now) and 53300 (too many connections).
                None => {
                    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
                }
            }
        }),
        _ => false,
    }
}

/// True when `error` is the database refusing a row that violates a unique key.
fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// True when `error` is the database refusing a change that breaks a foreign key.
fn is_foreign_key_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}

/// Turns a stored JSON column back into a value, treating a mismatch as corruption.
fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(Error::internal)
}

/// Turns a value into a JSON column.
fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(Error::internal)
}
