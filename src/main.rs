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
    if let Command::Healthcheck {
        addr,
        service,
        timeout,
    } = &command
    {
        return healthcheck(addr, service, *timeout).await;
    }
    if let Command::Token(args) = &command {
        return print_token(args);
    }
    let log = match &command {
        Command::Serve(config) => &config.log,
        Command::Migrate { log, .. } => log,
        Command::Healthcheck { .. } | Command::Token(_) => return ExitCode::SUCCESS,
    };
    let _telemetry = match telemetry::init(log, std::io::stderr) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("ticketd: {message}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match command {
        Command::Serve(config) => serve(config).await,
        Command::Migrate { database, .. } => migrate(database).await,
        Command::Healthcheck { .. } | Command::Token(_) => Ok(()),
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
    let store = Store::connect(&database.connect_settings())
        .await
        .map_err(|error| {
            format!(
                "cannot connect to the database: {}",
                ticketd::error::database_message(&error)
            )
        })?;
    store
        .migrate()
        .await
        .map_err(|error| format!("cannot apply database migrations: {error}"))?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Prints a signed HS256 token for `ticketd token`.
fn print_token(args: &ticketd::config::TokenArgs) -> ExitCode {
    use ticketd::auth::{
        Role,
        credentials::{Claims, mint_hs256, read_secret},
    };
    let fail = |message: String| {
        eprintln!("ticketd token: {message}");
        ExitCode::FAILURE
    };
    if Role::parse(&args.role).is_none() {
        return fail(format!(
            "--role must be admin, agent, service or customer, not {:?}",
            args.role
        ));
    }
    if args.role == "customer" && args.portal.is_none() {
        return fail("customer tokens need --portal".to_owned());
    }
    let config = ticketd::config::AuthConfig {
        jwt_hs256_secret: args.secret.clone(),
        jwt_hs256_secret_file: args.secret_file.clone(),
        ..Default::default()
    };
    let secret = match read_secret(&config) {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return fail(
                "set TICKETD_JWT_HS256_SECRET(_FILE) or --jwt-hs256-secret(-file)".to_owned(),
            );
        }
        Err(error) => return fail(error.to_string()),
    };
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: args.sub.clone(),
        role: args.role.clone(),
        org: args.org.clone(),
        email: args.email.clone(),
        portal: args.portal,
        scope: args.scope.clone(),
        exp: now + args.ttl_secs.max(1),
        nbf: None,
        iat: Some(now),
        iss: args.issuer.clone(),
        aud: args.audience.clone(),
    };
    match mint_hs256(&secret, &claims) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(error.to_string()),
    }
}

/// Exit 0 when the server at `addr` reports `service` SERVING; used by container probes and `helm test`.
async fn healthcheck(addr: &str, service: &str, timeout: std::time::Duration) -> ExitCode {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let uri = match addr.split_once("://") {
        None => format!("http://{addr}"),
        Some(("http", _)) => addr.to_owned(),
        // Asking over plaintext what was meant for TLS would report a different server, or a proxy's error, as
        // the answer; this binary carries no TLS client, so it says so instead.
        Some((scheme, _)) => {
            eprintln!(
                "ticketd healthcheck: {addr}: the {scheme}:// scheme is not supported; ticketd serves plaintext \
                 gRPC and its healthcheck speaks only that: give http://HOST:PORT or HOST:PORT of the server itself, \
                 not of a TLS-terminating proxy"
            );
            return ExitCode::FAILURE;
        }
    };
    let asked = async {
        let channel = tonic::transport::Endpoint::from_shared(uri)?
            .connect_timeout(timeout)
            .connect()
            .await?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(response.into_inner().status())
    };
    match tokio::time::timeout(timeout, asked).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            eprintln!(
                "ticketd healthcheck: {addr} reports {}",
                status.as_str_name()
            );
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("ticketd healthcheck: {addr}: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("ticketd healthcheck: {addr} did not answer within {timeout:?}");
            ExitCode::FAILURE
        }
    }
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
