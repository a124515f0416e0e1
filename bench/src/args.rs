//! Command-line arguments and the scenarios they select.

use clap::{Parser, ValueEnum};

/// Load generator for ticketd.
#[derive(Debug, Parser)]
#[command(name = "ticketd-bench", version, about)]
pub struct Args {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// What each worker does in a loop.
    #[arg(long, value_enum, default_value_t = Scenario::Create)]
    pub scenario: Scenario,
    /// Workers sending requests at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long to send requests, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Tickets the `update` scenario contends on (fewer means more etag conflicts).
    #[arg(long, default_value_t = 16)]
    pub hot_tickets: usize,
    /// gRPC connections shared by the workers.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Tickets to load with BatchCreateTickets before measuring (spread over agents, organisations,
    /// stages, priorities, words and a NUMBER property `bench_score`).
    #[arg(long, default_value_t = 0)]
    pub seed: usize,
    /// Items of the one ImportTickets stream the `import` scenario sends.
    #[arg(long, default_value_t = 100_000)]
    pub import_tickets: usize,
    /// WatchTickets streams opened by `watch-fanout`.
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,
    /// Ticket updates per second made by `watch-fanout`'s writer.
    #[arg(long, default_value_t = 10)]
    pub write_rate: u64,
    /// Tickets the `webhooks` scenario creates, each delivered once to a local receiver.
    #[arg(long, default_value_t = 5_000)]
    pub deliveries: usize,
    /// Enabled automation rules to create before measuring, each on TICKET_CREATED and TICKET_UPDATED with a
    /// two-term condition: the cost of evaluating rules on every write.
    #[arg(long, default_value_t = 0)]
    pub rules: usize,
    /// Make the `--rules` match every ticket and act (each adds a tag), instead of matching none.
    #[arg(long)]
    pub rules_fire: bool,
    /// Bearer token sent with every call (a server running `--auth jwt`; mint one with `ticketd token`).
    #[arg(long, env = "TICKETD_BENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Server process id: `watch-fanout` reports its resident memory before and after opening the streams.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A ticketd database the `raw-*` scenarios talk to directly (`sqlite://ticketd.db` or `postgres://…`);
    /// they recreate `raw_tickets` there as a copy of its `tickets` table.
    #[arg(long)]
    pub raw_database_url: Option<String>,
    /// Serve the `raw-broadcast` yardstick on this address instead of running a scenario.
    #[arg(long, hide = true)]
    pub serve_raw_broadcast: Option<std::net::SocketAddr>,
}

/// What each worker does in a loop (`--scenario`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// CreateTicket.
    Create,
    /// GetTicket of random existing tickets.
    Get,
    /// Read-modify-write UpdateTicket with etags on `--hot-tickets` tickets, retrying on ABORTED.
    Update,
    /// 60 % get, 20 % create, 20 % update.
    Mixed,
    /// SearchTickets by assignee and stage (an indexed filter), first page of 50.
    SearchIndexed,
    /// SearchTickets by two words of subject and content (full text), first page of 50.
    SearchText,
    /// SearchTickets by a NUMBER property range, first page of 50.
    SearchProperty,
    /// `--subscribers` WatchTickets streams; one writer updates a ticket `--write-rate` times a second;
    /// latency is from the event's commit (its create_time) to its arrival at each subscriber.
    WatchFanout,
    /// `watch-fanout` against a bare tonic broadcast of the same messages (`ticketd-bench
    /// --serve-raw-broadcast ADDR`, a separate process; `--addr` and `--server-pid` name it): the yardstick
    /// for `watch-fanout`.
    RawBroadcast,
    /// One ImportTickets stream of `--import-tickets` items (compare with `--seed`, which loads by
    /// BatchCreateTickets); `--server-pid` adds the server's memory along the way.
    Import,
    /// UpdateTicket of `--hot-tickets` tickets without an etag (last write wins), setting `content`:
    /// the service's counterpart of a blind primary-key UPDATE.
    UpdateBlind,
    /// Deliveries per second to a local webhook receiver (`--deliveries` tickets; the server needs
    /// `--webhook-allow-private-targets`).
    Webhooks,
    /// `grpc.health.v1.Health/Check`: one gRPC round trip with no database work, the transport's ceiling
    /// for this client, these connections and this machine.
    Noop,
    /// One-row INSERT into `raw_tickets` (a copy of the `tickets` table of the ticketd database at
    /// `--raw-database-url`: same columns and indexes) straight through sqlx, no service in between.
    RawInsert,
    /// SELECT by primary key from `raw_tickets` (1,000 rows).
    RawSelect,
    /// UPDATE by primary key of `raw_tickets` (`--hot-tickets` rows).
    RawUpdate,
}
