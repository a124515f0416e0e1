//! The `ticketd` binary: parse configuration, set up logging, then serve or migrate.

use std::process::ExitCode;

use clap::Parser;
use ticketd::{
    Application,
    config::{Cli, Command},
    store::Store,
    telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().into_command();
    let log = match &command {
        Command::Serve(config) => &config.log,
        Command::Migrate { log, .. } => log,
    };
    if let Err(message) = telemetry::init(log, std::io::stderr) {
        eprintln!("ticketd: {message}");
        return ExitCode::FAILURE;
    }
    let outcome = match command {
        Command::Serve(config) => serve(config).await,
        Command::Migrate { database, .. } => migrate(database).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("ticketd: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ticketd::config::ServeConfig) -> Result<(), String> {
    let app = Application::build(config)
        .await
        .map_err(|error| error.to_string())?;
    app.run_until_stopped(shutdown_signal())
        .await
        .map_err(|error| error.to_string())
}

async fn migrate(database: ticketd::config::DatabaseConfig) -> Result<(), String> {
    let store = Store::connect(&database)
        .await
        .map_err(|error| format!("cannot connect to the database: {error}"))?;
    store
        .migrate()
        .await
        .map_err(|error| format!("cannot apply database migrations: {error}"))?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
