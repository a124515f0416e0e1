//! Fresh databases for each test and the `both_databases!` macro that runs a test against SQLite and PostgreSQL.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use tempfile::TempDir;

/// Admin connection used to create one PostgreSQL database per test.
pub const POSTGRES_URL_ENV: &str = "TICKETD_TEST_POSTGRES_URL";
/// The admin connection when [`POSTGRES_URL_ENV`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Writes every test once, as `async fn name(app: TestApp)`, and runs it against both databases:
/// `both_databases!(a, b)` generates `mod sqlite { #[tokio::test] async fn a() .. }` and `mod postgres { .. }`.
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::support::TestApp::sqlite().await).await
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::support::TestApp::postgres().await).await
                }
            )+
        }
    };
}

/// Writes tests that only PostgreSQL can run, as `async fn name(app: TestApp)` like [`both_databases!`]: several
/// replicas need a database server (SQLite is embedded, one replica), and some migrations are PostgreSQL-only.
/// `postgres_only!(a)` generates `mod postgres_replicas { #[tokio::test] async fn a() .. }`; the module keeps the
/// name CI knows these tests by.
macro_rules! postgres_only {
    ($($(#[$attr:meta])* $name:ident),+ $(,)?) => {
        mod postgres_replicas {
            $(
                $(#[$attr])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::support::TestApp::postgres().await).await
                }
            )+
        }
    };
}

/// A database that lives as long as any server of the test uses it.
pub struct TestDatabase {
    pub url: String,
    kind: DatabaseKind,
}

enum DatabaseKind {
    /// The directory holding the SQLite file; deleted on drop.
    Sqlite(#[allow(dead_code)] TempDir),
    /// The admin URL and the name of the database to drop afterwards.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// An empty SQLite file in a temporary directory.
    pub async fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ticketd-test-")
            .tempdir()
            .expect("cannot create a temporary directory for the SQLite database");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("ticketd.db").display()
        );
        Self {
            url,
            kind: DatabaseKind::Sqlite(dir),
        }
    }

    /// A new PostgreSQL database on the admin connection's server; panics when PostgreSQL is unreachable.
    pub async fn postgres() -> Self {
        let admin_url =
            std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let name = format!("ticketd_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL is unreachable at {admin_url} (set {POSTGRES_URL_ENV} to an admin URL of a running \
                 server): {err}"
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| {
                panic!("cannot create test database {name} through {admin_url}: {err}")
            });
        let _ = admin.close().await;
        let url = with_database_name(&admin_url, &name);
        Self {
            url,
            kind: DatabaseKind::Postgres { admin_url, name },
        }
    }
}

impl TestDatabase {
    /// Another fresh database of the same kind as this one.
    pub async fn fresh_like(&self) -> Self {
        match self.kind {
            DatabaseKind::Sqlite(_) => Self::sqlite().await,
            DatabaseKind::Postgres { .. } => Self::postgres().await,
        }
    }

    /// This PostgreSQL database's URL naming database `name` instead.
    pub fn url_of_database(&self, name: &str) -> String {
        with_database_name(&self.url, name)
    }

    /// Which database this is.
    pub fn backend(&self) -> sea_orm::DbBackend {
        match self.kind {
            DatabaseKind::Sqlite(_) => sea_orm::DbBackend::Sqlite,
            DatabaseKind::Postgres { .. } => sea_orm::DbBackend::Postgres,
        }
    }

    /// The PostgreSQL server's address, as the URL names it (`127.0.0.1:5432` when the URL leaves it out).
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let authority = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let host_port = authority
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .rsplit('@')
            .next()
            .unwrap_or_default();
        let with_port = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
        let with_port = with_port.replace("localhost", "127.0.0.1");
        with_port
            .parse()
            .unwrap_or_else(|err| panic!("{} does not name a socket address: {err}", self.url))
    }
}

impl Drop for TestDatabase {
    /// Best effort: drops the PostgreSQL database (forcing out connections of servers still shutting down).
    fn drop(&mut self) {
        let DatabaseKind::Postgres { admin_url, name } = &self.kind else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop is synchronous and may run inside the test's runtime: use a thread with a runtime of its own.
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
