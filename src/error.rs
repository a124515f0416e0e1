//! Errors that stop the server from starting or running; each prints as one line an operator can act on.

use std::{net::SocketAddr, path::PathBuf};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to the database: {}", database_message(.0))]
    Database(#[source] sea_orm::DbErr),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("authentication is misconfigured: {0}")]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error(
        "refusing to serve on {address} with --auth none: anyone who can reach it would be an admin; use --auth jwt, listen on a loopback address, or pass --allow-insecure-auth-none"
    )]
    InsecureAuthNone { address: SocketAddr },
    #[error(
        "another ticketd is already serving the SQLite database {} (it holds {}); SQLite is single-replica: run one server per file, or PostgreSQL for several replicas", database.display(), lock.display()
    )]
    SqliteInUse { database: PathBuf, lock: PathBuf },
    #[error("cannot lock {}: {source}", path.display())]
    SqliteLock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A database error as one line for an operator: the start-up checks' own messages without sea-orm's "Custom
/// Error:" prefix, which says nothing to them.
pub fn database_message(error: &sea_orm::DbErr) -> String {
    match error {
        sea_orm::DbErr::Custom(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot start the event streams: {0}")]
    Events(String),
    #[error("cannot start the webhook workers: {0}")]
    Webhooks(String),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}
