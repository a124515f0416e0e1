//! Fresh databases per test: a SQLite file in a temporary directory, or a new PostgreSQL database created
//! through `TICKETD_TEST_POSTGRES_URL` and dropped afterwards (the way ticketd's own API tests do it).

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use tempfile::TempDir;

/// Admin connection used to create one PostgreSQL database per test.
pub const POSTGRES_URL_ENV: &str = "TICKETD_TEST_POSTGRES_URL";
/// The admin connection when [`POSTGRES_URL_ENV`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that lives as long as the test's server.
pub struct TestDatabase {
    pub url: String,
    kind: Kind,
}

enum Kind {
    /// The directory holding the SQLite file; deleted on drop.
    Sqlite(#[allow(dead_code)] TempDir),
    /// The admin URL and the name of the database to drop afterwards.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// An empty SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ticketctl-test-")
            .tempdir()
            .expect("cannot create a temporary directory for the SQLite database");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ticketd.db").display()
        );
        Self {
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database; panics (never skips) when PostgreSQL is unreachable.
    pub async fn postgres() -> Self {
        let admin_url =
            std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("ticketctl_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL is unreachable at {admin_url} (set {POSTGRES_URL_ENV} to an admin URL of a running \
                 server): {err}"
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        let _ = admin.close().await;
        let url = with_database_name(&admin_url, &name);
        Self {
            url,
            kind: Kind::Postgres { admin_url, name },
        }
    }
}

impl Drop for TestDatabase {
    /// Best effort: drops the PostgreSQL database, forcing out connections of a server still stopping.
    fn drop(&mut self) {
        let Kind::Postgres { admin_url, name } = &self.kind else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop is synchronous and may run inside the test's runtime: a thread with a runtime of its own.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = connect_admin(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// One admin connection, failing within seconds when PostgreSQL is down.
async fn connect_admin(admin_url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(admin_url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await
}

/// `postgres://user@host:5432/postgres?x=y` with the database replaced by `name`.
fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
