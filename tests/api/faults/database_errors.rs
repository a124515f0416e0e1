//! The one mapping of database errors (issue 16, item 1): a connection that is lost, refused or busy is the
//! database's state, not a bug, and reaches the client as UNAVAILABLE with a `RetryInfo`; INTERNAL stays for
//! real faults. Each error here is produced by the real database, not built by hand.

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use ticketd::domain::Error;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::support::*;

async fn open(url: &str, sqlite_busy_timeout: Duration) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(2)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |options| options.busy_timeout(sqlite_busy_timeout));
    Database::connect(options).await.expect("connect")
}

#[track_caller]
fn assert_unavailable(error: sea_orm::DbErr, what: &str) {
    let described = error.to_string();
    let mapped = Error::from(error);
    assert!(
        matches!(mapped, Error::Unavailable(_)),
        "{what}: {described} must map to Unavailable, got {mapped:?}"
    );
    let status = Status::from(mapped);
    assert_eq!(status.code(), Code::Unavailable, "{what}: {status:?}");
    assert!(
        status.get_details_retry_info().is_some(),
        "{what}: UNAVAILABLE must carry RetryInfo: {status:?}"
    );
}

/// A connection lost inside a transaction: PostgreSQL ends the backend (57P01, as at a fast shutdown); SQLite
/// answers SQLITE_BUSY because another connection holds the write lock past the busy timeout.
async fn a_connection_level_failure_is_unavailable_with_retry_info(app: TestApp) {
    let url = app.database.url.clone();
    match app.database.backend() {
        DbBackend::Postgres => {
            let victim = open(&url, Duration::ZERO).await;
            let txn = victim.begin().await.expect("begin");
            let pid: i32 = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT pg_backend_pid() AS pid",
                ))
                .await
                .expect("pid")
                .expect("a row")
                .try_get("", "pid")
                .expect("pid column");
            let admin = open(&url, Duration::ZERO).await;
            admin
                .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
                .await
                .expect("terminate");
            let error = txn
                .execute_unprepared("SELECT 1")
                .await
                .expect_err("the backend was terminated");
            assert_unavailable(error, "a terminated PostgreSQL backend");
        }
        _ => {
            let holder = open(&url, Duration::ZERO).await;
            let immediate = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            };
            let held = holder
                .begin_with_options(immediate)
                .await
                .expect("take the write lock");
            let other = open(&url, Duration::ZERO).await;
            let error = other
                .begin_with_options(immediate)
                .await
                .expect_err("the write lock is held");
            assert_unavailable(error, "a SQLite file locked by another connection");
            held.rollback().await.expect("rollback");
        }
    }
    // The server was never involved and still works.
    app.create_ticket(ticket("after the mapping checks")).await;
    app.shutdown().await;
}

/// A statement the database refuses for what it says (here: a table that does not exist) is a bug of ours:
/// INTERNAL, with nothing of the SQL in the message.
async fn a_statement_error_stays_internal_and_opaque(app: TestApp) {
    let connection = open(&app.database.url, Duration::ZERO).await;
    let error = connection
        .execute_unprepared("SELECT * FROM no_such_table")
        .await
        .expect_err("no such table");
    let mapped = Error::from(error);
    assert!(matches!(mapped, Error::Internal(_)), "{mapped:?}");
    let status = Status::from(mapped);
    assert_eq!(status.code(), Code::Internal);
    assert!(!status.message().contains("no_such_table"), "{status:?}");
    app.shutdown().await;
}

both_databases!(
    a_connection_level_failure_is_unavailable_with_retry_info,
    a_statement_error_stays_internal_and_opaque,
);
