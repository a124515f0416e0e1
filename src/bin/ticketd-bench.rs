//! `ticketd-bench`: a load generator for a running ticketd, speaking gRPC through the generated client.
//!
//! Each worker sends one request at a time for the given duration; the tool prints throughput, latency
//! percentiles and every non-OK status by code. `--seed N` first loads N realistic tickets in batches.
//! Figures from this machine are in BENCHMARKS.md.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use ticketd::proto::{
    BatchCreateTicketsRequest, CreatePropertyRequest, CreateTicketRequest, Filter, FilterGroup,
    FilterOperator, GetTicketRequest, Priority, PropertyDefinition, PropertyType,
    SearchTicketsRequest, Ticket, UpdateTicketRequest, WatchTicketsRequest,
    property_service_client::PropertyServiceClient, ticket_service_client::TicketServiceClient,
};
use tokio::sync::Mutex;
use tokio_stream::StreamExt;
use tonic::{
    Code,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Load generator for ticketd.
#[derive(Debug, Parser)]
#[command(name = "ticketd-bench", version, about)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// What each worker does in a loop.
    #[arg(long, value_enum, default_value_t = Scenario::Create)]
    scenario: Scenario,
    /// Workers sending requests at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to send requests, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Tickets the `update` scenario contends on (fewer means more etag conflicts).
    #[arg(long, default_value_t = 16)]
    hot_tickets: usize,
    /// gRPC connections shared by the workers.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Tickets to load with BatchCreateTickets before measuring (spread over agents, organisations,
    /// stages, priorities, words and a NUMBER property `bench_score`).
    #[arg(long, default_value_t = 0)]
    seed: usize,
    /// WatchTickets streams opened by `watch-fanout`.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Ticket updates per second made by `watch-fanout`'s writer.
    #[arg(long, default_value_t = 10)]
    write_rate: u64,
    /// Bearer token sent with every call (a server running `--auth jwt`; mint one with `ticketd token`).
    #[arg(long, env = "TICKETD_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Server process id: `watch-fanout` reports its resident memory before and after opening the streams.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A ticketd database the `raw-*` scenarios talk to directly (`sqlite://ticketd.db` or `postgres://…`);
    /// they recreate `raw_tickets` there as a copy of its `tickets` table.
    #[arg(long)]
    raw_database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
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
    /// UpdateTicket of `--hot-tickets` tickets without an etag (last write wins), setting `content`:
    /// the service's counterpart of a blind primary-key UPDATE.
    UpdateBlind,
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

/// Words seeded tickets are written with; searches pick from them.
const WORDS: [&str; 24] = [
    "printer", "jam", "login", "password", "invoice", "refund", "shipping", "delay", "crash",
    "update", "billing", "account", "locked", "email", "bounce", "export", "report", "slow",
    "timeout", "error", "mobile", "sync", "license", "upgrade",
];
const AGENTS: u64 = 50;
const ORGANIZATIONS: u64 = 1_000;
const SEED_BATCH: usize = 100;

/// Adds the `--token` to every call, when one was given.
#[derive(Clone)]
struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A connection whose calls carry the token.
type Conn = InterceptedService<Channel, BearerToken>;

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failures: BTreeMap<String, u64>,
    aborted_retries: u64,
}

impl Tally {
    /// Adds a worker's own tally (kept locally so workers do not contend on every call).
    fn absorb(&mut self, mut worker: Tally) {
        self.latencies.append(&mut worker.latencies);
        self.aborted_retries += worker.aborted_retries;
        for (failure, count) in worker.failures {
            *self.failures.entry(failure).or_default() += count;
        }
    }
}

/// A small xorshift: picking the next ticket costs nothing and is reproducible per worker.
struct Xorshift(u64);

impl Xorshift {
    fn for_worker(worker: usize) -> Self {
        Self(0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if matches!(
        args.scenario,
        Scenario::RawInsert | Scenario::RawSelect | Scenario::RawUpdate
    ) {
        return raw::run(&args).await;
    }
    let token = match &args.token {
        None => None,
        Some(token) => Some(format!("Bearer {token}").parse::<MetadataValue<Ascii>>()?),
    };
    let mut channels = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        let channel = Channel::from_shared(args.addr.clone())?.connect().await?;
        channels.push(InterceptedService::new(channel, BearerToken(token.clone())));
    }
    define_properties(PropertyServiceClient::new(channels[0].clone())).await?;
    if args.seed > 0 {
        seed(&args, &channels).await?;
    }
    let hot_ids = seed_hot_tickets(
        TicketServiceClient::new(channels[0].clone()),
        args.hot_tickets.max(1),
    )
    .await?;
    if args.scenario == Scenario::WatchFanout {
        return watch_fanout(&args, &channels, hot_ids[0]).await;
    }
    let hot_ids = Arc::new(hot_ids);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(args.duration_secs);
    let started = Instant::now();

    let mut workers = Vec::with_capacity(args.concurrency);
    for worker in 0..args.concurrency {
        let client = channels[worker % channels.len()].clone();
        let (hot_ids, tally) = (Arc::clone(&hot_ids), Arc::clone(&tally));
        workers.push(tokio::spawn(async move {
            run_worker(worker, args.scenario, client, &hot_ids, deadline, &tally).await
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed();
    report(&args, elapsed, &mut *tally.lock().await);
    Ok(())
}

/// The NUMBER properties the scenarios write; already defined is fine.
async fn define_properties(mut client: PropertyServiceClient<Conn>) -> Result<(), tonic::Status> {
    for name in ["counter", "bench_score"] {
        let created = client
            .create_property(CreatePropertyRequest {
                property: Some(PropertyDefinition {
                    name: name.to_owned(),
                    label: name.to_owned(),
                    r#type: PropertyType::Number.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await;
        match created {
            Ok(_) => {}
            Err(status) if status.code() == Code::AlreadyExists => {}
            Err(status) => return Err(status),
        }
    }
    Ok(())
}

/// Loads `--seed` tickets, `--concurrency` batches at a time.
async fn seed(args: &Args, channels: &[Conn]) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let batches = args.seed.div_ceil(SEED_BATCH);
    let next_batch = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut loaders = Vec::new();
    for loader in 0..args.concurrency.max(1) {
        let mut client = TicketServiceClient::new(channels[loader % channels.len()].clone());
        let next_batch = Arc::clone(&next_batch);
        let total = args.seed;
        loaders.push(tokio::spawn(async move {
            loop {
                let batch = next_batch.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if batch >= batches {
                    return Ok::<(), tonic::Status>(());
                }
                let first = batch * SEED_BATCH;
                let requests = (first..(first + SEED_BATCH).min(total))
                    .map(|index| CreateTicketRequest {
                        ticket: Some(seeded_ticket(index as u64)),
                        ..Default::default()
                    })
                    .collect();
                client
                    .batch_create_tickets(BatchCreateTicketsRequest {
                        requests,
                        request_id: String::new(),
                    })
                    .await?;
            }
        }));
    }
    for loader in loaders {
        loader.await??;
    }
    println!(
        "seeded {} tickets in {:.1}s",
        args.seed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A varied ticket: numbers are spread with a multiplicative hash so neighbours differ.
fn seeded_ticket(index: u64) -> Ticket {
    let mix = index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let word = |shift: u32| WORDS[((mix >> shift) % WORDS.len() as u64) as usize];
    Ticket {
        subject: format!("{} {} on account {index}", word(0), word(8)),
        content: format!(
            "Customer reports {} {} after {} {}; ticket number {index}.",
            word(16),
            word(24),
            word(32),
            word(40)
        ),
        stage_id: (mix % 4 + 1) as i64,
        priority: (mix % 4 + 1) as i32,
        assignee_id: format!("agent-{}", (mix >> 8) % AGENTS),
        organization_id: format!("org-{}", (mix >> 16) % ORGANIZATIONS),
        requester_id: format!("contact-{}", index % 20_000),
        tags: vec![word(48).to_owned()],
        properties: [("bench_score".to_owned(), ((mix >> 24) % 1_000).to_string())].into(),
        ..Default::default()
    }
}

async fn seed_hot_tickets(
    mut client: TicketServiceClient<Conn>,
    count: usize,
) -> Result<Vec<i64>, tonic::Status> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let ticket = client
            .create_ticket(CreateTicketRequest {
                ticket: Some(new_ticket(&format!("bench seed {index}"))),
                ..Default::default()
            })
            .await?
            .into_inner();
        ids.push(ticket.id);
    }
    Ok(ids)
}

fn new_ticket(subject: &str) -> Ticket {
    Ticket {
        subject: subject.to_owned(),
        content: "load test ticket".to_owned(),
        priority: Priority::Medium.into(),
        tags: vec!["bench".to_owned()],
        ..Default::default()
    }
}

fn filter(property: &str, operator: FilterOperator, value: String) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: operator.into(),
        value,
        ..Default::default()
    }
}

async fn run_worker(
    worker: usize,
    scenario: Scenario,
    connection: Conn,
    hot_ids: &[i64],
    deadline: Instant,
    tally: &Mutex<Tally>,
) {
    let mut local = Tally::default();
    let mut client = TicketServiceClient::new(connection.clone());
    let mut health = HealthClient::new(connection);
    let mut random_numbers = Xorshift::for_worker(worker);
    let mut sequence = 0u64;
    while Instant::now() < deadline {
        sequence += 1;
        let roll = random_numbers.next() % 100;
        let random = random_numbers.next();
        let id = hot_ids[(random % hot_ids.len() as u64) as usize];
        let action = match scenario {
            Scenario::Mixed if roll < 60 => Scenario::Get,
            Scenario::Mixed if roll < 80 => Scenario::Create,
            Scenario::Mixed => Scenario::Update,
            other => other,
        };
        let search = |groups: Vec<FilterGroup>, query: String| SearchTicketsRequest {
            filter_groups: groups,
            query,
            page_size: 50,
            ..Default::default()
        };
        let started = Instant::now();
        let outcome = match action {
            Scenario::Create => client
                .create_ticket(CreateTicketRequest {
                    ticket: Some(new_ticket(&format!("bench {worker}-{sequence}"))),
                    ..Default::default()
                })
                .await
                .map(drop),
            Scenario::Get => client.get_ticket(GetTicketRequest { id }).await.map(drop),
            Scenario::Noop => health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(drop),
            Scenario::UpdateBlind => client
                .update_ticket(UpdateTicketRequest {
                    ticket: Some(Ticket {
                        id,
                        content: format!("write {worker}-{sequence}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["content".to_owned()],
                    }),
                    request_id: String::new(),
                })
                .await
                .map(drop),
            Scenario::SearchIndexed => client
                .search_tickets(search(
                    vec![FilterGroup {
                        filters: vec![
                            filter(
                                "assignee_id",
                                FilterOperator::Eq,
                                format!("agent-{}", random % AGENTS),
                            ),
                            filter("stage_id", FilterOperator::Eq, (random % 4 + 1).to_string()),
                        ],
                    }],
                    String::new(),
                ))
                .await
                .map(drop),
            Scenario::SearchText => client
                .search_tickets(search(
                    Vec::new(),
                    format!(
                        "{} {}",
                        WORDS[(random % WORDS.len() as u64) as usize],
                        WORDS[((random >> 8) % WORDS.len() as u64) as usize]
                    ),
                ))
                .await
                .map(drop),
            Scenario::SearchProperty => {
                let low = random % 990;
                client
                    .search_tickets(search(
                        vec![FilterGroup {
                            filters: vec![Filter {
                                property: "bench_score".to_owned(),
                                operator: FilterOperator::Between.into(),
                                value: low.to_string(),
                                high_value: (low + 10).to_string(),
                                ..Default::default()
                            }],
                        }],
                        String::new(),
                    ))
                    .await
                    .map(drop)
            }
            Scenario::Update | Scenario::Mixed => {
                read_modify_write(&mut client, id, &mut local.aborted_retries).await
            }
            Scenario::WatchFanout
            | Scenario::RawInsert
            | Scenario::RawSelect
            | Scenario::RawUpdate => unreachable!("{action:?} does not run in the request loop"),
        };
        match outcome {
            Ok(()) => local.latencies.push(started.elapsed()),
            Err(status) => {
                *local
                    .failures
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1
            }
        }
    }
    tally.lock().await.absorb(local);
}

/// Get, bump a counter property, update with the etag; on ABORTED start over (counted as a retry).
async fn read_modify_write(
    client: &mut TicketServiceClient<Conn>,
    id: i64,
    aborted_retries: &mut u64,
) -> Result<(), tonic::Status> {
    loop {
        let mut ticket = client
            .get_ticket(GetTicketRequest { id })
            .await?
            .into_inner();
        let counter: u64 = ticket
            .properties
            .get("counter")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        ticket
            .properties
            .insert("counter".to_owned(), (counter + 1).to_string());
        let update = UpdateTicketRequest {
            ticket: Some(ticket),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["properties.counter".to_owned()],
            }),
            request_id: String::new(),
        };
        match client.update_ticket(update).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == Code::Aborted => *aborted_retries += 1,
            Err(status) => return Err(status),
        }
    }
}

fn report(args: &Args, elapsed: Duration, tally: &mut Tally) {
    tally.latencies.sort_unstable();
    let percentile = |p: f64| -> Duration {
        if tally.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((tally.latencies.len() as f64 - 1.0) * p).round() as usize;
        tally.latencies[rank]
    };
    let ok = tally.latencies.len();
    println!(
        "scenario={:?} concurrency={} duration={:.1}s ok={} throughput={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms aborted_retries={} failures={:?}",
        args.scenario,
        args.concurrency,
        elapsed.as_secs_f64(),
        ok,
        ok as f64 / elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.90).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        percentile(1.0).as_secs_f64() * 1e3,
        tally.aborted_retries,
        tally.failures,
    );
}

/// Resident memory of a process in KiB, from /proc.
fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Opens the streams, drives the writer for the duration, and reports delivery latency and memory.
async fn watch_fanout(
    args: &Args,
    channels: &[Conn],
    ticket_id: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let memory_before = args.server_pid.and_then(resident_kib);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(args.subscribers.max(1));
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for index in 0..args.subscribers {
        let mut client = TicketServiceClient::new(channels[index % channels.len()].clone());
        let (ready_tx, stop) = (ready_tx.clone(), Arc::clone(&stop));
        subscribers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // Opening thousands of streams at once meets the server's load shedding; like a well-behaved
            // client, back off and retry when it answers RESOURCE_EXHAUSTED.
            let mut backoff = Duration::from_millis(5 + (index % 20) as u64);
            let mut stream = loop {
                match client
                    .watch_tickets(WatchTicketsRequest {
                        ticket_ids: vec![ticket_id],
                        ..Default::default()
                    })
                    .await
                {
                    Ok(response) => break response.into_inner(),
                    Err(status)
                        if status.code() == Code::ResourceExhausted
                            && backoff < Duration::from_secs(5) =>
                    {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                    Err(_) => {
                        let _ = ready_tx.send(false).await;
                        return (latencies, 1u64);
                    }
                }
            };
            let _ = ready_tx.send(true).await;
            loop {
                tokio::select! {
                    _ = stop.notified() => return (latencies, 0),
                    message = stream.next() => match message {
                        Some(Ok(event)) => {
                            if let Some(created) = event.create_time {
                                let created = Duration::new(created.seconds as u64, created.nanos as u32);
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap_or_default();
                                latencies.push(now.saturating_sub(created));
                            }
                        }
                        _ => return (latencies, 1),
                    },
                }
            }
        }));
    }
    drop(ready_tx);
    // Every subscriber reports once, opened or not.
    let mut opened = 0;
    for _ in 0..args.subscribers {
        if ready_rx.recv().await == Some(true) {
            opened += 1;
        }
    }
    // Let the server settle its per-stream buffers before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let memory_open = args.server_pid.and_then(resident_kib);

    let mut writer = TicketServiceClient::new(channels[0].clone());
    let interval = Duration::from_micros(1_000_000 / args.write_rate.max(1));
    let deadline = Instant::now() + Duration::from_secs(args.duration_secs);
    let mut writes = 0u64;
    let mut ticker = tokio::time::interval(interval);
    while Instant::now() < deadline {
        ticker.tick().await;
        writes += 1;
        writer
            .update_ticket(UpdateTicketRequest {
                ticket: Some(Ticket {
                    id: ticket_id,
                    content: format!("write {writes}"),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["content".to_owned()],
                }),
                request_id: String::new(),
            })
            .await?;
    }
    // Give the last events time to arrive before stopping the subscribers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.notify_waiters();
    let mut latencies = Vec::new();
    let mut broken = 0;
    for subscriber in subscribers {
        let (mut mine, failed) = subscriber.await?;
        latencies.append(&mut mine);
        broken += failed;
    }
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    let expected = writes * opened as u64;
    let per_stream = match (memory_before, memory_open) {
        (Some(before), Some(open)) if opened > 0 => {
            format!(
                "{:.1}KiB",
                (open.saturating_sub(before)) as f64 / opened as f64
            )
        }
        _ => "n/a".to_owned(),
    };
    println!(
        "scenario=WatchFanout subscribers={opened} writes={writes} delivered={}/{expected} broken_streams={broken} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms server_rss_before={:?}KiB server_rss_open={:?}KiB per_stream={per_stream}",
        latencies.len(),
        percentile(0.50),
        percentile(0.90),
        percentile(0.99),
        percentile(1.0),
        memory_before,
        memory_open,
    );
    Ok(())
}

/// The `raw-*` scenarios: the database alone, through the driver the service itself uses (sqlx), with the
/// service's SQLite settings (WAL, `synchronous=FULL`), so the ratio service/raw isolates what the service adds.
mod raw {
    use std::{str::FromStr, sync::Arc, time::Duration};

    use sea_orm::sqlx::{
        self, PgPool, SqlitePool,
        postgres::PgPoolOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    };
    use tokio::{sync::Mutex, time::Instant};

    use super::{Args, Scenario, Tally, Xorshift, report};

    /// Rows `raw-select` reads from.
    const SELECT_ROWS: i64 = 1_000;

    /// `raw_tickets` is a copy of the service's own `tickets` table: same columns, defaults, generated
    /// search column and indexes, so the raw figure pays for everything the data model needs.
    const POSTGRES_SCHEMA: &str = "DROP TABLE IF EXISTS raw_tickets; \
        CREATE TABLE raw_tickets (LIKE tickets INCLUDING ALL);";
    const POSTGRES_INSERT: &str = "INSERT INTO raw_tickets (subject, content, pipeline_id, stage_id, \
        priority, tags, create_time, update_time) VALUES ($1, 'load test ticket', 1, 1, 'medium', \
        '[\"bench\"]', now(), now())";
    const POSTGRES_SELECT: &str = "SELECT * FROM raw_tickets WHERE id = $1";
    const POSTGRES_UPDATE: &str = "UPDATE raw_tickets SET content = $1, update_time = now(), version = version + 1 WHERE id = $2";

    /// SQLite has no `LIKE`: the DDL of `tickets` (table, indexes, full-text table and its triggers) is
    /// replayed with every `tickets` renamed.
    const SQLITE_SCHEMA_SOURCE: &str = "SELECT sql FROM sqlite_master \
        WHERE tbl_name IN ('tickets', 'tickets_fts') AND sql IS NOT NULL \
        ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END";
    const SQLITE_INSERT: &str = "INSERT INTO raw_tickets (subject, content, pipeline_id, stage_id, \
        priority, tags, create_time, update_time) VALUES (?, 'load test ticket', 1, 1, 'medium', \
        '[\"bench\"]', strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now'))";
    const SQLITE_SELECT: &str = "SELECT * FROM raw_tickets WHERE id = ?";
    const SQLITE_UPDATE: &str = "UPDATE raw_tickets SET content = ?, \
        update_time = strftime('%Y-%m-%d %H:%M:%f', 'now'), version = version + 1 WHERE id = ?";

    #[derive(Clone)]
    enum Pool {
        Sqlite(SqlitePool),
        Postgres(PgPool),
    }

    impl Pool {
        async fn connect(url: &str, connections: u32) -> Result<Self, sqlx::Error> {
            if url.starts_with("sqlite:") {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(connections)
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            } else {
                let pool = PgPoolOptions::new()
                    .max_connections(connections)
                    .connect(url)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }

        /// Recreates `raw_tickets` from the service's `tickets` table.
        async fn copy_tickets_table(&self) -> Result<(), sqlx::Error> {
            match self {
                Self::Postgres(pool) => {
                    sqlx::raw_sql(POSTGRES_SCHEMA).execute(pool).await.map(drop)
                }
                Self::Sqlite(pool) => {
                    sqlx::raw_sql(
                        "DROP TABLE IF EXISTS raw_tickets; DROP TABLE IF EXISTS raw_tickets_fts;",
                    )
                    .execute(pool)
                    .await?;
                    let statements: Vec<String> = sqlx::query_scalar(SQLITE_SCHEMA_SOURCE)
                        .fetch_all(pool)
                        .await?;
                    if statements.is_empty() {
                        return Err(sqlx::Error::Protocol(
                            "no tickets table: point --raw-database-url at a ticketd database"
                                .into(),
                        ));
                    }
                    for statement in statements {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(without_foreign_keys(
                            &statement.replace("tickets", "raw_tickets"),
                        )))
                        .execute(pool)
                        .await?;
                    }
                    Ok(())
                }
            }
        }

        async fn insert(&self, subject: &str) -> Result<(), sqlx::Error> {
            match self {
                Self::Sqlite(pool) => sqlx::query(SQLITE_INSERT)
                    .bind(subject)
                    .execute(pool)
                    .await
                    .map(drop),
                Self::Postgres(pool) => sqlx::query(POSTGRES_INSERT)
                    .bind(subject)
                    .execute(pool)
                    .await
                    .map(drop),
            }
        }

        async fn select(&self, id: i64) -> Result<(), sqlx::Error> {
            let found = match self {
                Self::Sqlite(pool) => sqlx::query(SQLITE_SELECT)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .is_some(),
                Self::Postgres(pool) => sqlx::query(POSTGRES_SELECT)
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .is_some(),
            };
            if found {
                Ok(())
            } else {
                Err(sqlx::Error::RowNotFound)
            }
        }

        async fn update(&self, id: i64, content: &str) -> Result<(), sqlx::Error> {
            let updated = match self {
                Self::Sqlite(pool) => sqlx::query(SQLITE_UPDATE)
                    .bind(content)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected(),
                Self::Postgres(pool) => sqlx::query(POSTGRES_UPDATE)
                    .bind(content)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            };
            if updated == 1 {
                Ok(())
            } else {
                Err(sqlx::Error::RowNotFound)
            }
        }
    }

    /// PostgreSQL's `LIKE` copies no foreign keys; the SQLite copy drops them too, so the raw rows need no
    /// pipeline and both raw figures measure the same table.
    fn without_foreign_keys(statement: &str) -> String {
        match statement.find(", FOREIGN KEY") {
            Some(start) => format!("{} )", &statement[..start]),
            None => statement.to_owned(),
        }
    }

    pub async fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
        let url = args
            .raw_database_url
            .as_deref()
            .ok_or("the raw-* scenarios need --raw-database-url")?;
        let workers = args.concurrency.max(1);
        let pool = Pool::connect(url, u32::try_from(workers)?).await?;
        pool.copy_tickets_table().await?;
        for row in 0..SELECT_ROWS.max(args.hot_tickets as i64) {
            pool.insert(&format!("raw seed {row}")).await?;
        }
        let hot_rows = args.hot_tickets.max(1) as u64;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.duration_secs);
        let mut tasks = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (pool, tally, scenario) = (pool.clone(), Arc::clone(&tally), args.scenario);
            tasks.push(tokio::spawn(async move {
                let mut local = Tally::default();
                let mut random_numbers = Xorshift::for_worker(worker);
                let mut sequence = 0u64;
                while Instant::now() < deadline {
                    sequence += 1;
                    let random = random_numbers.next();
                    let text = format!("raw {worker}-{sequence}");
                    let begun = Instant::now();
                    let outcome = match scenario {
                        Scenario::RawInsert => pool.insert(&text).await,
                        Scenario::RawSelect => {
                            pool.select(1 + (random % SELECT_ROWS as u64) as i64).await
                        }
                        _ => pool.update(1 + (random % hot_rows) as i64, &text).await,
                    };
                    match outcome {
                        Ok(()) => local.latencies.push(begun.elapsed()),
                        Err(error) => {
                            *local.failures.entry(error.to_string()).or_default() += 1;
                        }
                    }
                }
                tally.lock().await.absorb(local);
            }));
        }
        for task in tasks {
            task.await?;
        }
        let elapsed = started.elapsed();
        report(args, elapsed, &mut *tally.lock().await);
        Ok(())
    }
}
