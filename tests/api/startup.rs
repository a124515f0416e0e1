//! What a new operator trips over at start-up: each mistake stops `Application::build` (or the binary) at once
//! with one line naming what is wrong, before the database is touched where it can be.

use std::{net::SocketAddr, process::Command, time::Duration};

use clap::Parser;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use ticketd::{
    Application,
    config::{Cli, Command as TicketdCommand, ServeConfig},
    error::StartupError,
};

use crate::support::*;

both_databases!(
    a_second_server_on_one_database_is_refused_on_sqlite_and_welcome_on_postgres,
    a_port_in_use_is_reported_before_the_database_is_touched,
    a_listen_host_name_is_resolved_at_start_up,
);

/// A test configuration (credentials checked, as the harness does) for `url` on a free port.
fn config(url: &str) -> ServeConfig {
    let mut config = ServeConfig::new("127.0.0.1:0".parse().expect("address"), url);
    enable_jwt(&mut config);
    config
}

async fn build_error(config: ServeConfig) -> StartupError {
    match Application::build(config).await {
        Ok(app) => panic!(
            "the server must not start; it listens on {}",
            app.local_addr()
        ),
        Err(error) => error,
    }
}

async fn a_second_server_on_one_database_is_refused_on_sqlite_and_welcome_on_postgres(
    app: TestApp,
) {
    let second = Application::build(config(&app.database.url)).await;
    match app.database.backend() {
        DbBackend::Sqlite => {
            let Err(error) = second else {
                panic!("a second server on one SQLite file must be refused");
            };
            assert!(
                matches!(error, StartupError::SqliteInUse { .. }),
                "{error:?}"
            );
            let text = error.to_string();
            assert!(text.contains("ticketd.db"), "names the file: {text}");
            assert!(text.contains("single-replica"), "says why: {text}");
        }
        _ => {
            second
                .unwrap_or_else(|error| panic!("PostgreSQL takes any number of servers: {error}"));
        }
    }
    // The first one serves on, and once it stops the file is free again.
    app.create_ticket(ticket("still served")).await;
    let app = app.restart().await;
    app.create_ticket(ticket("after a restart")).await;
    app.shutdown().await;
}

async fn a_port_in_use_is_reported_before_the_database_is_touched(app: TestApp) {
    let fresh = app.database.fresh_like().await;
    let taken = app.addr;
    let mut occupied = config(&fresh.url);
    occupied.listen = taken;
    let error = build_error(occupied).await;
    assert!(matches!(error, StartupError::Bind { .. }), "{error:?}");
    assert!(error.to_string().contains(&taken.to_string()), "{error}");

    // Nothing was created or migrated.
    match fresh.backend() {
        DbBackend::Sqlite => {
            let path = fresh
                .url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            assert!(
                !std::path::Path::new(&path).exists(),
                "{path} must not be created before the port is bound"
            );
        }
        _ => {
            let db = Database::connect(fresh.url.as_str())
                .await
                .expect("connect to the fresh database");
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT count(*) AS tables FROM information_schema.tables WHERE table_schema = 'public'",
                ))
                .await
                .expect("count tables")
                .expect("one row");
            let tables: i64 = row.try_get("", "tables").expect("a count");
            assert_eq!(tables, 0, "no migration may run before the port is bound");
            let _ = db.close().await;
        }
    }
    app.shutdown().await;
}

async fn a_listen_host_name_is_resolved_at_start_up(app: TestApp) {
    let database = app.database.clone();
    app.shutdown().await;
    let cli = Cli::try_parse_from([
        "ticketd",
        "--listen",
        "localhost:0",
        "--database-url",
        &database.url,
    ])
    .unwrap_or_else(|error| panic!("--listen localhost:0 must parse: {error}"));
    let TicketdCommand::Serve(mut config) = cli.into_command() else {
        panic!("serving is the default command");
    };
    config.auth = ServeConfig::new("127.0.0.1:0".parse().expect("address"), "").auth;
    enable_jwt(&mut config);
    let built = Application::build(config)
        .await
        .unwrap_or_else(|error| panic!("a server on localhost must start: {error}"));
    assert!(
        built.local_addr().ip().is_loopback(),
        "{}",
        built.local_addr()
    );
    drop(built);

    let unknown = Cli::try_parse_from(["ticketd", "--listen", "no-such-host.invalid:50051"])
        .expect_err("a host that does not resolve is refused")
        .to_string();
    assert!(unknown.contains("--listen"), "{unknown}");
    assert!(unknown.contains("no-such-host.invalid"), "{unknown}");
}

#[tokio::test]
async fn a_sqlite_url_without_mode_creates_the_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let app = Application::build(config(&url))
        .await
        .unwrap_or_else(|error| panic!("{url} must create the file: {error}"));
    assert!(path.exists(), "{} was not created", path.display());
    drop(app);

    // An explicit mode is obeyed: `mode=rw` opens only a file that exists.
    let other = dir.path().join("other.db");
    let error = build_error(config(&format!("sqlite://{}?mode=rw", other.display()))).await;
    let text = error.to_string();
    assert!(
        text.contains(&other.display().to_string()),
        "names the file: {text}"
    );
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_names_the_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("not-there");
    let url = format!("sqlite://{}?mode=rwc", missing.join("ticketd.db").display());
    let text = build_error(config(&url)).await.to_string();
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_within_seconds() {
    // Nothing listens on port 1.
    let started = std::time::Instant::now();
    let text = build_error(config("postgres://postgres@127.0.0.1:1/ticketd"))
        .await
        .to_string();
    assert!(text.contains("127.0.0.1:1"), "names host and port: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_missing_postgres_database_is_named() {
    let existing = TestDatabase::postgres().await;
    let url = existing.url_of_database("ticketd_no_such_database");
    let text = build_error(config(&url)).await.to_string();
    assert!(
        text.contains("\"ticketd_no_such_database\" does not exist"),
        "{text}"
    );
    let addr: SocketAddr = existing.server_addr();
    assert!(
        text.contains(&addr.port().to_string()),
        "names the server: {text}"
    );
}

#[test]
fn healthcheck_refuses_https_instead_of_asking_in_plaintext() {
    let output = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["healthcheck", "--addr", "https://127.0.0.1:1"])
        .output()
        .expect("run ticketd healthcheck");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("https:// scheme is not supported"),
        "{stderr}"
    );
}
