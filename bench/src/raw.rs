//! The `raw-*` scenarios: the database alone, through the driver the service itself uses (sqlx), with the
//! service's SQLite settings (WAL, `synchronous=FULL`), so the ratio service/raw isolates what the service adds.

use std::{str::FromStr, sync::Arc, time::Duration};

use sea_orm::sqlx::{
    self, PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::{sync::Mutex, time::Instant};

use crate::{
    args::{Args, Scenario},
    tally::{Tally, Xorshift, report},
};

/// Rows `raw-select` reads from.
const SELECT_ROWS: i64 = 1_000;

/// `raw_tickets` is a copy of the service's own `tickets` table: same columns, defaults, generated
/// search column and indexes, so the raw figure pays for everything the data model needs.
const POSTGRES_SCHEMA: &str = "DROP TABLE IF EXISTS raw_tickets; \
    CREATE TABLE raw_tickets (LIKE tickets INCLUDING ALL);";
const POSTGRES_INSERT: &str = "INSERT INTO raw_tickets (subject, content, pipeline_id, stage_id, \
    priority, tags, create_time, update_time) VALUES ($1, 'load test ticket', 1, 1, 'medium', \
    '[\"bench\"]', now(), now())";
const POSTGRES_SELECT: &str = "SELECT * FROM raw_tickets WHERE id = $1";
const POSTGRES_UPDATE: &str =
    "UPDATE raw_tickets SET content = $1, update_time = now(), version = version + 1 WHERE id = $2";

/// SQLite has no `LIKE`: the DDL of `tickets` (table, indexes, full-text table and its triggers) is
/// replayed with every `tickets` renamed.
const SQLITE_SCHEMA_SOURCE: &str = "SELECT sql FROM sqlite_master \
    WHERE tbl_name IN ('tickets', 'tickets_fts') AND sql IS NOT NULL \
    ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END";
const SQLITE_INSERT: &str = "INSERT INTO raw_tickets (subject, content, pipeline_id, stage_id, \
    priority, tags, create_time, update_time) VALUES (?, 'load test ticket', 1, 1, 'medium', \
    '[\"bench\"]', strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now'))";
const SQLITE_SELECT: &str = "SELECT * FROM raw_tickets WHERE id = ?";
const SQLITE_UPDATE: &str = "UPDATE raw_tickets SET content = ?, \
    update_time = strftime('%Y-%m-%d %H:%M:%f', 'now'), version = version + 1 WHERE id = ?";

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    async fn connect(url: &str, connections: u32) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(connections)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(connections)
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        }
    }

    /// Recreates `raw_tickets` from the service's `tickets` table.
    async fn copy_tickets_table(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(pool) => sqlx::raw_sql(POSTGRES_SCHEMA).execute(pool).await.map(drop),
            Self::Sqlite(pool) => {
                sqlx::raw_sql(
                    "DROP TABLE IF EXISTS raw_tickets; DROP TABLE IF EXISTS raw_tickets_fts;",
                )
                .execute(pool)
                .await?;
                let statements: Vec<String> = sqlx::query_scalar(SQLITE_SCHEMA_SOURCE)
                    .fetch_all(pool)
                    .await?;
                if statements.is_empty() {
                    return Err(sqlx::Error::Protocol(
                        "no tickets table: point --raw-database-url at a ticketd database".into(),
                    ));
                }
                for statement in statements {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(without_foreign_keys(
                        &statement.replace("tickets", "raw_tickets"),
                    )))
                    .execute(pool)
                    .await?;
                }
                Ok(())
            }
        }
    }

    async fn insert(&self, subject: &str) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query(SQLITE_INSERT)
                .bind(subject)
                .execute(pool)
                .await
                .map(drop),
            Self::Postgres(pool) => sqlx::query(POSTGRES_INSERT)
                .bind(subject)
                .execute(pool)
                .await
                .map(drop),
        }
    }

    async fn select(&self, id: i64) -> Result<(), sqlx::Error> {
        let found = match self {
            Self::Sqlite(pool) => sqlx::query(SQLITE_SELECT)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .is_some(),
            Self::Postgres(pool) => sqlx::query(POSTGRES_SELECT)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .is_some(),
        };
        if found {
            Ok(())
        } else {
            Err(sqlx::Error::RowNotFound)
        }
    }

    async fn update(&self, id: i64, content: &str) -> Result<(), sqlx::Error> {
        let updated = match self {
            Self::Sqlite(pool) => sqlx::query(SQLITE_UPDATE)
                .bind(content)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Postgres(pool) => sqlx::query(POSTGRES_UPDATE)
                .bind(content)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        if updated == 1 {
            Ok(())
        } else {
            Err(sqlx::Error::RowNotFound)
        }
    }
}

/// PostgreSQL's `LIKE` copies no foreign keys; the SQLite copy drops them too, so the raw rows need no
/// pipeline and both raw figures measure the same table.
fn without_foreign_keys(statement: &str) -> String {
    match statement.find(", FOREIGN KEY") {
        Some(start) => format!("{} )", &statement[..start]),
        None => statement.to_owned(),
    }
}

/// Copies the `tickets` table, fills it, then runs `--concurrency` workers of the raw scenario and reports.
pub async fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let url = args
        .raw_database_url
        .as_deref()
        .ok_or("the raw-* scenarios need --raw-database-url")?;
    let workers = args.concurrency.max(1);
    let pool = Pool::connect(url, u32::try_from(workers)?).await?;
    pool.copy_tickets_table().await?;
    for row in 0..SELECT_ROWS.max(args.hot_tickets as i64) {
        pool.insert(&format!("raw seed {row}")).await?;
    }
    let hot_rows = args.hot_tickets.max(1) as u64;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration_secs);
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (pool, tally, scenario) = (pool.clone(), Arc::clone(&tally), args.scenario);
        tasks.push(tokio::spawn(async move {
            let mut local = Tally::default();
            let mut random_numbers = Xorshift::for_worker(worker);
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                sequence += 1;
                let random = random_numbers.next();
                let text = format!("raw {worker}-{sequence}");
                let begun = Instant::now();
                let outcome = match scenario {
                    Scenario::RawInsert => pool.insert(&text).await,
                    Scenario::RawSelect => {
                        pool.select(1 + (random % SELECT_ROWS as u64) as i64).await
                    }
                    _ => pool.update(1 + (random % hot_rows) as i64, &text).await,
                };
                match outcome {
                    Ok(()) => local.latencies.push(begun.elapsed()),
                    Err(error) => {
                        *local.failures.entry(error.to_string()).or_default() += 1;
                    }
                }
            }
            tally.lock().await.absorb(local);
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed();
    report(args, elapsed, &mut *tally.lock().await);
    Ok(())
}
