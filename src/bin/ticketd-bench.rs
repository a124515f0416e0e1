//! `ticketd-bench`: a load generator for a running ticketd, speaking gRPC through the generated client.
//!
//! Each worker sends one request at a time for the given duration; the tool prints throughput, latency
//! percentiles and every non-OK status by code. Figures from this machine are in BENCHMARKS.md.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use ticketd::proto::{
    CreateTicketRequest, GetTicketRequest, Priority, Ticket, UpdateTicketRequest,
    ticket_service_client::TicketServiceClient,
};
use tokio::sync::Mutex;
use tonic::{Code, transport::Channel};

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
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    failures: BTreeMap<String, u64>,
    aborted_retries: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut channels = Vec::with_capacity(args.connections.max(1));
    for _ in 0..args.connections.max(1) {
        channels.push(Channel::from_shared(args.addr.clone())?.connect().await?);
    }
    let seed_client = TicketServiceClient::new(channels[0].clone());
    let hot_ids = seed_tickets(seed_client, args.hot_tickets.max(1)).await?;
    let hot_ids = Arc::new(hot_ids);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(args.duration_secs);
    let started = Instant::now();

    let mut workers = Vec::with_capacity(args.concurrency);
    for worker in 0..args.concurrency {
        let client = TicketServiceClient::new(channels[worker % channels.len()].clone());
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

async fn seed_tickets(
    mut client: TicketServiceClient<Channel>,
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

async fn run_worker(
    worker: usize,
    scenario: Scenario,
    mut client: TicketServiceClient<Channel>,
    hot_ids: &[i64],
    deadline: Instant,
    tally: &Mutex<Tally>,
) {
    let mut local = Tally::default();
    // A small xorshift keeps the choice of ticket cheap and reproducible per worker.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut sequence = 0u64;
    while Instant::now() < deadline {
        sequence += 1;
        let roll = next() % 100;
        let id = hot_ids[(next() % hot_ids.len() as u64) as usize];
        let action = match scenario {
            Scenario::Create => Scenario::Create,
            Scenario::Get => Scenario::Get,
            Scenario::Update => Scenario::Update,
            Scenario::Mixed if roll < 60 => Scenario::Get,
            Scenario::Mixed if roll < 80 => Scenario::Create,
            Scenario::Mixed => Scenario::Update,
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
            _ => read_modify_write(&mut client, id, &mut local.aborted_retries).await,
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
    let mut total = tally.lock().await;
    total.latencies.append(&mut local.latencies);
    total.aborted_retries += local.aborted_retries;
    for (code, count) in local.failures {
        *total.failures.entry(code).or_default() += count;
    }
}

/// Get, bump a counter property, update with the etag; on ABORTED start over (counted as a retry).
async fn read_modify_write(
    client: &mut TicketServiceClient<Channel>,
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
            ..Default::default()
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
