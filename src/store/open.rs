//! What happens before the pool exists: finding the SQLite file and keeping other servers off it, and a first
//! PostgreSQL connection that fails fast and says where it went.

use std::{
    fs::{File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use sea_orm::{
    DbErr, sqlx,
    sqlx::{
        Connection,
        postgres::{PgConnectOptions, PgConnection},
        sqlite::SqliteConnectOptions,
    },
};

use crate::error::StartupError;

/// How long the first PostgreSQL connection may take. A replica that cannot reach its database has nothing to
/// serve: saying so in seconds beats the pool's 10 s "pool timed out", which names nothing.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SqliteUrl {
    /// The database file; `None` for an in-memory database.
    pub file: Option<PathBuf>,
    /// Whether the URL says `mode=` itself; without it the file is created when missing.
    pub explicit_mode: bool,
}

impl SqliteUrl {
    /// `None` when `url` is not a SQLite URL.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("sqlite:")?;
        let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
        let mut explicit_mode = false;
        let mut in_memory = database.trim_start_matches("//") == ":memory:";
        for pair in params.split('&') {
            if let Some(mode) = pair.strip_prefix("mode=") {
                explicit_mode = true;
                in_memory |= mode == "memory";
            }
        }
        // sqlx decodes the path (`%3F` for a `?` in a file name); its reading is the one that opens the file.
        let file = if in_memory {
            None
        } else {
            SqliteConnectOptions::from_str(url)
                .ok()
                .map(|options| options.get_filename().to_path_buf())
        };
        Some(Self {
            file,
            explicit_mode,
        })
    }
}

/// Refuses a SQLite file in a directory that does not exist, naming both, rather than SQLite's "unable to
/// open database file".
pub(super) fn check_sqlite_directory(file: &Path) -> Result<(), DbErr> {
    let directory = match file.parent() {
        Some(directory) if !directory.as_os_str().is_empty() => directory,
        _ => return Ok(()),
    };
    if directory.is_dir() {
        return Ok(());
    }
    Err(DbErr::Custom(format!(
        "cannot open SQLite database {}: the directory {} does not exist",
        file.display(),
        directory.display()
    )))
}

/// Names the file in an error SQLite gave while opening it.
pub(super) fn sqlite_open_error(file: &Path, error: DbErr) -> DbErr {
    DbErr::Custom(format!(
        "cannot open SQLite database {}: {error}",
        file.display()
    ))
}

/// Opens one connection to PostgreSQL, within [`FIRST_CONNECT_TIMEOUT`], and says what went wrong in terms of
/// the URL: which host and port did not answer, which database does not exist.
pub(super) async fn check_postgres(url: &str) -> Result<(), DbErr> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|error| DbErr::Custom(format!("invalid PostgreSQL URL: {error}")))?;
    let place = match options.get_socket() {
        Some(socket) => format!("PostgreSQL at {}", socket.display()),
        None => format!(
            "PostgreSQL at {}:{}",
            options.get_host(),
            options.get_port()
        ),
    };
    let database = options
        .get_database()
        .map(str::to_owned)
        .unwrap_or_else(|| options.get_username().to_owned());
    let connected =
        tokio::time::timeout(FIRST_CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await;
    let error = match connected {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            return Ok(());
        }
        Err(_) => {
            return Err(DbErr::Custom(format!(
                "{place} did not answer within {} s (is it running, and is the host and port right?)",
                FIRST_CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(error)) => error,
    };
    let message = match &error {
        sqlx::Error::Database(error) if error.code().as_deref() == Some("3D000") => format!(
            "database {database:?} does not exist on {place}; create it (CREATE DATABASE) or fix the URL"
        ),
        sqlx::Error::Database(error) => {
            format!(
                "{place} refused the connection to database {database:?}: {}",
                error.message()
            )
        }
        other => format!("cannot reach {place}: {other}"),
    };
    Err(DbErr::Custom(message))
}

/// An exclusive lock on `<database file>.lock`, held while a server runs: SQLite is one replica, and a second
/// server on the same file would start silently and then fight the first for the write lock. The lock is the
/// operating system's (`flock`), so it goes away with the process, however it ends; the file stays.
#[derive(Debug)]
pub struct SqliteLock {
    _file: File,
}

impl SqliteLock {
    /// Takes the lock for the database of `url`; `None` for PostgreSQL and in-memory SQLite.
    pub fn acquire(url: &str) -> Result<Option<Self>, StartupError> {
        let Some(SqliteUrl {
            file: Some(database),
            ..
        }) = SqliteUrl::parse(url)
        else {
            return Ok(None);
        };
        check_sqlite_directory(&database).map_err(StartupError::Database)?;
        let mut path = database.clone().into_os_string();
        path.push(".lock");
        let path = PathBuf::from(path);
        let cannot = |source| StartupError::SqliteLock {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(TryLockError::WouldBlock) => Err(StartupError::SqliteInUse {
                database,
                lock: path,
            }),
            Err(TryLockError::Error(source)) => Err(cannot(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        let parsed = |url| SqliteUrl::parse(url).unwrap();
        assert_eq!(
            parsed("sqlite://ticketd.db?mode=rwc"),
            SqliteUrl {
                file: Some("ticketd.db".into()),
                explicit_mode: true
            }
        );
        assert_eq!(
            parsed("sqlite:///var/lib/ticketd/new.db"),
            SqliteUrl {
                file: Some("/var/lib/ticketd/new.db".into()),
                explicit_mode: false
            }
        );
        assert_eq!(parsed("sqlite::memory:").file, None);
        assert_eq!(parsed("sqlite://x.db?mode=memory").file, None);
        assert_eq!(parsed("sqlite://a%3Fb.db").file, Some("a?b.db".into()));
        assert_eq!(SqliteUrl::parse("postgres://u@h/db"), None);
    }
}
