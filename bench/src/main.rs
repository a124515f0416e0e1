//! `ticketd-bench`: a load generator for a running ticketd, speaking gRPC through the generated client.
//!
//! Each worker sends one request at a time for the given duration; the tool prints throughput, latency
//! percentiles and every non-OK status by code. `--seed N` first loads N realistic tickets in batches.
//! Figures from this machine are in BENCHMARKS.md.

mod args;
mod fanout;
mod import;
mod raw;
mod raw_broadcast;
mod scenarios;
mod seed;
mod tally;
mod webhooks;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use ticketd::proto::{
    property_service_client::PropertyServiceClient, ticket_service_client::TicketServiceClient,
};
use tokio::sync::Mutex;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::interceptor::InterceptedService,
    transport::Channel,
};

use args::{Args, Scenario};
use scenarios::{BearerToken, define_properties, run_worker};
use seed::{create_rules, seed, seed_hot_tickets};
use tally::{Tally, report};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(addr) = args.serve_raw_broadcast {
        return raw_broadcast::serve(addr).await;
    }
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
    if args.scenario == Scenario::RawBroadcast {
        // The yardstick has one ticket, id 1, and nothing to set up.
        return fanout::watch_fanout(&args, &channels, 1).await;
    }
    define_properties(PropertyServiceClient::new(channels[0].clone())).await?;
    if args.seed > 0 {
        seed(&args, &channels).await?;
    }
    if args.rules > 0 {
        create_rules(&args, channels[0].clone()).await?;
    }
    let hot_ids = seed_hot_tickets(
        TicketServiceClient::new(channels[0].clone()),
        args.hot_tickets.max(1),
    )
    .await?;
    if args.scenario == Scenario::Import {
        return import::import(&args, channels[0].clone()).await;
    }
    if args.scenario == Scenario::Webhooks {
        return webhooks::deliveries(&args, &channels).await;
    }
    if args.scenario == Scenario::WatchFanout {
        return fanout::watch_fanout(&args, &channels, hot_ids[0]).await;
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
