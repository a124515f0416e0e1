//! The command line: every command, flag and help text, with clap derive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Appended to `--help`: the exit codes, so scripts can tell a missing ticket from a refused change.
const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  success
   1  usage or local error (bad flag, unreadable file, malformed --filter or --set)
   2  import finished, but some items were refused (each is reported on stderr with its line)
  10+ the server answered with an error: 10 + the gRPC code
      11 CANCELLED            12 UNKNOWN              13 INVALID_ARGUMENT
      14 DEADLINE_EXCEEDED    15 NOT_FOUND            16 ALREADY_EXISTS
      17 PERMISSION_DENIED    18 RESOURCE_EXHAUSTED   19 FAILED_PRECONDITION
      20 ABORTED              21 OUT_OF_RANGE         22 UNIMPLEMENTED
      23 INTERNAL             24 UNAVAILABLE (also: cannot connect)
      25 DATA_LOSS            26 UNAUTHENTICATED

Errors are printed on stderr as `error: CODE: message`, followed by one line per field violation.

Environment:
  TICKETD_ADDR   the server (same as --addr)
  TICKETD_TOKEN  bearer token sent as `authorization: Bearer <token>` (same as --token)
  NO_COLOR       when set and non-empty, never colour output (colour is also off when stdout is no terminal)";

/// Syntax of `--filter`, shown by `ticketctl get tickets --help`.
const FILTER_HELP: &str = "\
Only tickets matching these terms (repeat the flag or join terms with AND; OR separates alternatives, and AND
binds tighter). Terms:
  field=value        equal                      priority=HIGH, assignee_id=agent-7
  field!=value       not equal
  field<value  field<=value  field>value  field>=value
  field=a|b|c        one of the values (IN);    field!=a|b  none of them (NOT_IN)
  field~word         contains the word (text) or has the tag (tags)
  field!~word        does not contain the word / lacks the tag
  field              has a value;               !field      has no value
Fields: id, stage_id, pipeline_id, priority, assignee_id, requester_id, organization_id, ticket_type,
external_id, tags, create_time, update_time, close_time, or a custom property's name. Times are RFC 3339.
Example: --filter 'assignee_id=agent-7 AND !close_time OR priority=URGENT'
With --filter or --query tickets come from SearchTickets, otherwise from ListTickets.";

/// `ticketctl`: work with a ticketd server from the command line, in kubectl's habits.
#[derive(Debug, Parser)]
#[command(
    name = "ticketctl",
    version,
    about = "Work with a ticketd server from the command line",
    after_long_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// The server's gRPC address.
    #[arg(
        long,
        env = "TICKETD_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub addr: String,
    /// Bearer token for `--auth jwt` servers (a JWT or an API key).
    #[arg(long, env = "TICKETD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List or show resources.
    #[command(subcommand)]
    Get(Get),
    /// Show one ticket in detail: fields, properties, associations, cards and its last 20 history events.
    #[command(subcommand)]
    Describe(Describe),
    /// Create a resource.
    #[command(subcommand)]
    Create(Create),
    /// Change fields of a resource.
    #[command(subcommand)]
    Update(Update),
    /// Move a ticket to the trash (restorable).
    #[command(subcommand)]
    Archive(Archive),
    /// Bring an archived ticket back.
    #[command(subcommand)]
    Restore(Restore),
    /// Add a comment to a ticket.
    Comment(CommentArgs),
    /// Follow changes as they happen.
    #[command(subcommand)]
    Watch(Watch),
    /// Import tickets from NDJSON or CSV (through ImportTickets; resending a file imports nothing twice).
    Import(ImportArgs),
}

/// `get` targets.
#[derive(Debug, Subcommand)]
pub enum Get {
    /// List tickets, optionally filtered and ordered.
    Tickets(ListTickets),
    /// Show one ticket.
    Ticket {
        /// The ticket's id.
        id: i64,
        #[command(flatten)]
        output: Output,
    },
    /// List pipelines and their stages.
    Pipelines(Output),
    /// List custom property definitions.
    Properties(Output),
    /// List customer portals.
    Portals(Output),
    /// List agents.
    Agents(Output),
}

/// `get tickets`.
#[derive(Debug, Args)]
pub struct ListTickets {
    #[arg(
        long,
        value_name = "TERMS",
        help = "Terms such as priority=HIGH, joined by AND / OR (syntax: --help)",
        long_help = FILTER_HELP
    )]
    pub filter: Vec<String>,
    /// Words that must all appear in subject or content (ignoring case).
    #[arg(long)]
    pub query: Option<String>,
    /// `FIELD [asc|desc]` or `-FIELD` for descending; FIELD is id, create_time or update_time.
    #[arg(long = "order-by", allow_hyphen_values = true)]
    pub order_by: Option<String>,
    /// At most this many tickets (0: all of them).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Include archived tickets.
    #[arg(long)]
    pub archived: bool,
    #[command(flatten)]
    pub output: Output,
}

/// `-o`: how results are printed.
#[derive(Debug, Args)]
pub struct Output {
    /// table (default), wide (more columns), json (proto3 JSON mapping), yaml, or name (`ticket/<id>`).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

/// `-o` of commands that change something: without it they print one line such as `ticket/7 created`.
#[derive(Debug, Args)]
pub struct ChangeOutput {
    /// Print the result as json, yaml, name, table or wide instead of a confirmation line.
    #[arg(short = 'o', long = "output", value_enum)]
    pub format: Option<Format>,
}

/// `describe` targets.
#[derive(Debug, Subcommand)]
pub enum Describe {
    /// A ticket with its properties, associations, cards and last 20 history events.
    Ticket {
        /// The ticket's id.
        id: i64,
    },
}

/// `create` targets.
#[derive(Debug, Subcommand)]
pub enum Create {
    /// Create a ticket.
    Ticket(CreateTicket),
}

/// `create ticket`.
#[derive(Debug, Args)]
pub struct CreateTicket {
    /// The subject (required unless the file gives one).
    #[arg(long, required_unless_present = "file")]
    pub subject: Option<String>,
    /// low, medium, high or urgent.
    #[arg(long)]
    pub priority: Option<String>,
    /// `NAME=VALUE`: a ticket field (content, pipeline_id, stage_id, assignee_id, requester_id,
    /// organization_id, ticket_type, project_id, external_id, tags as a comma-separated list) or a custom
    /// property (`properties.NAME=VALUE` or just `NAME=VALUE`). Repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// A ticket in proto3 JSON or YAML (`{"subject": "...", "priority": "PRIORITY_HIGH"}`); flags override it.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub output: ChangeOutput,
}

/// `update` targets.
#[derive(Debug, Subcommand)]
pub enum Update {
    /// Change fields of a ticket; only the fields named are written.
    Ticket(UpdateTicket),
}

/// `update ticket`.
#[derive(Debug, Args)]
pub struct UpdateTicket {
    /// The ticket's id.
    pub id: i64,
    /// `FIELD=VALUE` (subject, priority, content, stage_id, ..., or a custom property); an empty value clears.
    #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
    pub set: Vec<String>,
    /// Fail with ABORTED unless the ticket's etag is still this one (from `get ticket ID -o json`).
    #[arg(long = "if-match", value_name = "ETAG")]
    pub if_match: Option<String>,
    #[command(flatten)]
    pub output: ChangeOutput,
}

/// `archive` targets.
#[derive(Debug, Subcommand)]
pub enum Archive {
    /// Archive a ticket.
    Ticket {
        /// The ticket's id.
        id: i64,
        /// Fail with ABORTED unless the ticket's etag is still this one.
        #[arg(long = "if-match", value_name = "ETAG")]
        if_match: Option<String>,
        #[command(flatten)]
        output: ChangeOutput,
    },
}

/// `restore` targets.
#[derive(Debug, Subcommand)]
pub enum Restore {
    /// Restore an archived ticket.
    Ticket {
        /// The ticket's id.
        id: i64,
        #[command(flatten)]
        output: ChangeOutput,
    },
}

/// `comment`.
#[derive(Debug, Args)]
pub struct CommentArgs {
    /// The ticket's id.
    pub id: i64,
    /// The comment's text.
    pub text: String,
    /// A private note between agents instead of a public reply.
    #[arg(long)]
    pub internal: bool,
    #[command(flatten)]
    pub output: ChangeOutput,
}

/// `watch` targets.
#[derive(Debug, Subcommand)]
pub enum Watch {
    /// Print one line per ticket event as it commits, until interrupted.
    Tickets(WatchTickets),
}

/// `watch tickets`.
#[derive(Debug, Args)]
pub struct WatchTickets {
    /// Only events of this ticket (repeatable).
    #[arg(long = "ticket", value_name = "ID")]
    pub tickets: Vec<i64>,
    /// Replay every event after this one first (event ids are printed as `#N`).
    #[arg(long = "after", value_name = "EVENT_ID", default_value_t = 0)]
    pub after: i64,
    /// `text` (one line per event) or `json` (one proto3 JSON object per line).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = WatchFormat::Text)]
    pub format: WatchFormat,
}

/// Output of `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    Text,
    Json,
}

/// `import`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
NDJSON: one JSON object per line, either a ticket in proto3 JSON ({\"subject\": \"...\", \"external_id\": \"Z-1\"})
or an import item ({\"ticket\": {...}, \"comments\": [{\"body\": \"...\", \"visibility\": \"PUBLIC\"}]}).
CSV: a header row naming ticket fields as --set does (subject, priority, external_id, tags, create_time, ...,
or custom properties); empty cells are left unset.
Every item needs an external_id: it is how a resent file is recognised. Items are numbered by their line, and
each refused one is reported on stderr as `line N: CODE: message`.")]
pub struct ImportArgs {
    /// The file to import: `.ndjson`/`.jsonl` or `.csv`.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// ndjson or csv; by default taken from the file's extension.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// What to do with an item whose external_id was imported before.
    #[arg(long = "on-conflict", value_enum, default_value_t = OnConflictArg::Skip)]
    pub on_conflict: OnConflictArg,
}

/// File formats `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Ndjson,
    Csv,
}

/// `--on-conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnConflictArg {
    /// Leave the existing ticket alone.
    Skip,
    /// Overwrite the existing ticket with the item.
    Update,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_well_formed() {
        Cli::command().debug_assert();
    }
}
