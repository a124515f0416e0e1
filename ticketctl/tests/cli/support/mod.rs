//! A real ticketd on `127.0.0.1:0` with `--auth none` over a fresh database, the built `ticketctl` run against
//! it, and generated clients for what the tests set up or check behind the CLI's back.

mod databases;

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

pub use databases::TestDatabase;
use ticketd::{
    Application,
    config::{AuthMode, ServeConfig},
    proto::{
        CreateTicketRequest, ListTicketsRequest, Ticket, ticket_service_client::TicketServiceClient,
    },
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// Writes every test once, as `async fn name(server: TestServer)`, and runs it on both databases:
/// `both_databases!(a)` generates `mod sqlite { #[tokio::test] async fn a() .. }` and `mod postgres { .. }`.
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::support::TestServer::sqlite().await).await
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::support::TestServer::postgres().await).await
                }
            )+
        }
    };
}
pub(crate) use both_databases;

/// The path of the binary under test.
pub const TICKETCTL: &str = env!("CARGO_BIN_EXE_ticketctl");

/// A running server. Dropping it stops it.
pub struct TestServer {
    pub addr: SocketAddr,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// The server task after `stop`, to wait for.
    stopped: Option<JoinHandle<()>>,
    // Declared last: dropped after the server is told to stop. `None` only while moving to another server.
    database: Option<TestDatabase>,
}

impl TestServer {
    /// A server over a fresh SQLite file.
    pub async fn sqlite() -> Self {
        Self::start(TestDatabase::sqlite(), None).await
    }

    /// A server over a fresh PostgreSQL database; panics when PostgreSQL is unreachable.
    pub async fn postgres() -> Self {
        Self::start(TestDatabase::postgres().await, None).await
    }

    /// Stops this server and starts one over the same database that wants HS256 tokens signed with `secret`.
    pub async fn with_jwt(mut self, secret: &str) -> Self {
        let database = self
            .database
            .take()
            .expect("a server always has its database");
        self.stop();
        // Until the stopped server is gone it holds the SQLite file's lock, and a second server is refused.
        if let Some(server) = self.stopped.take() {
            let _ = server.await;
        }
        Self::start(database, Some(secret)).await
    }

    async fn start(database: TestDatabase, jwt_secret: Option<&str>) -> Self {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
        let mut config = ServeConfig::new(listen, database.url.clone());
        match jwt_secret {
            // Loopback only, so `none` is allowed: every caller is an admin and the CLI needs no token.
            None => config.auth.mode = AuthMode::None,
            Some(secret) => {
                config.auth.mode = AuthMode::Jwt;
                config.auth.jwt_hs256_secret = Some(secret.to_owned());
            }
        }
        let app = Application::build(config).await.unwrap_or_else(|err| {
            panic!("Application::build failed for {}: {err:?}", database.url)
        });
        let addr = app.local_addr();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = app
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await;
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("a valid URI")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_or_else(|err| panic!("cannot connect to the test server at {addr}: {err:?}"));
        Self {
            addr,
            channel,
            shutdown: Some(tx),
            server: Some(server),
            stopped: None,
            database: Some(database),
        }
    }

    /// A generated TicketService client: the "other client" of the tests.
    pub fn tickets(&self) -> TicketServiceClient<Channel> {
        TicketServiceClient::new(self.channel.clone())
    }

    /// The channel, for other services' clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A ticket made through the API.
    pub async fn create_ticket(&self, ticket: Ticket) -> Ticket {
        self.tickets()
            .create_ticket(CreateTicketRequest {
                ticket: Some(ticket),
                ..CreateTicketRequest::default()
            })
            .await
            .expect("CreateTicket")
            .into_inner()
    }

    /// Every ticket, archived ones included, read through the API.
    pub async fn all_tickets(&self) -> Vec<Ticket> {
        let mut client = self.tickets();
        let mut tickets = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_tickets(ListTicketsRequest {
                    page_size: 500,
                    page_token,
                    show_archived: true,
                    ..ListTicketsRequest::default()
                })
                .await
                .expect("ListTickets")
                .into_inner();
            tickets.extend(page.tickets);
            if page.next_page_token.is_empty() {
                return tickets;
            }
            page_token = page.next_page_token;
        }
    }

    /// `ticketctl ARGS` against this server, run to its end.
    pub async fn ctl(&self, args: &[&str]) -> Run {
        let mut command = self.command(args);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the blocking task")
            .expect("ticketctl runs");
        Run::from(output)
    }

    /// `ticketctl ARGS` with extra environment variables, run to its end.
    pub async fn ctl_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(envs.iter().copied());
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the blocking task")
            .expect("ticketctl runs");
        Run::from(output)
    }

    /// `ticketctl ARGS` in `dir`, run to its end (for files named relatively).
    pub async fn ctl_in(&self, dir: &Path, args: &[&str]) -> Run {
        let mut command = self.command(args);
        command.current_dir(dir);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the blocking task")
            .expect("ticketctl runs");
        Run::from(output)
    }

    /// `ticketctl ARGS` started with stdout piped, for commands that do not end by themselves.
    pub fn spawn_ctl(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ticketctl starts")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(TICKETCTL);
        command
            .args(args)
            // Through the variable, so that it is covered too; the flag is covered by the error tests.
            .env("TICKETD_ADDR", format!("http://{}", self.addr))
            .env_remove("TICKETD_TOKEN")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        command
    }
}

impl TestServer {
    /// Tells the server to stop, without waiting.
    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
            self.stopped = Some(server);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a finished `ticketctl` printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            // None only when killed by a signal, which these runs are not.
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with both outputs unless the run exited 0; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "ticketctl failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }
}
