//! `ticketctl`: ticketd for people, in kubectl's habits. Parses the command line, runs one command, and maps
//! its failure onto the documented exit codes (see `ticketctl --help`).

mod cli;
mod client;
mod describe;
mod error;
mod fields;
mod filter;
mod import;
mod output;
mod resources;
mod tickets;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::{
    cli::{Archive, Cli, Command, Create, Describe, Get, Restore, Update, Watch},
    client::Server,
    error::{CliError, EXIT_LOCAL},
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout and succeed; usage errors exit 1 like every local error (clap's own
            // default, 2, is taken by partly failed imports).
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(EXIT_LOCAL)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error.render());
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let server = Server::connect(&cli.addr, cli.token.as_deref()).await?;
    match cli.command {
        Command::Get(get) => match get {
            Get::Tickets(args) => tickets::list(&server, args).await,
            Get::Ticket { id, output } => tickets::get(&server, id, output.format).await,
            Get::Pipelines(output) => resources::pipelines(&server, output.format).await,
            Get::Properties(output) => resources::properties(&server, output.format).await,
            Get::Portals(output) => resources::portals(&server, output.format).await,
            Get::Agents(output) => resources::agents(&server, output.format).await,
        },
        Command::Describe(Describe::Ticket { id }) => describe::ticket(&server, id).await,
        Command::Create(Create::Ticket(args)) => tickets::create(&server, args).await,
        Command::Update(Update::Ticket(args)) => tickets::update(&server, args).await,
        Command::Archive(Archive::Ticket {
            id,
            if_match,
            output,
        }) => tickets::archive(&server, id, if_match, &output).await,
        Command::Restore(Restore::Ticket { id, output }) => {
            tickets::restore(&server, id, &output).await
        }
        Command::Comment(args) => tickets::comment(&server, args).await,
        Command::Watch(Watch::Tickets(args)) => watch::watch(&server, args).await,
        Command::Import(args) => import::import(&server, args).await,
    }
}
