//! `import`: one ImportTickets stream of `--import-tickets` items, the way a desk moves its history in, beside
//! `--seed` (BatchCreateTickets) for comparison. Reports tickets per second, how many items were refused, and,
//! with `--server-pid`, the server's resident memory every 10 % of the way, which must stay flat.

use std::time::Instant;

use ticketd::proto::{
    ImportItem, ImportOptions, ImportTicketsRequest, OnConflict, Ticket,
    import_tickets_request::Kind, ticket_service_client::TicketServiceClient,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{args::Args, fanout::resident_kib, scenarios::Conn, seed::seeded_ticket};

/// Items queued ahead of the server: enough to keep the stream full, few enough to stay small.
const IN_FLIGHT: usize = 1_024;

pub async fn import(args: &Args, channel: Conn) -> Result<(), Box<dyn std::error::Error>> {
    let total = args.import_tickets;
    // Each run imports its own external ids, so runs against one database do not collide.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let (items, requests) = mpsc::channel(IN_FLIGHT);
    let producer = tokio::spawn(async move {
        let options = ImportTicketsRequest {
            kind: Some(Kind::Options(ImportOptions {
                side_effects: None,
                on_conflict: OnConflict::Skip.into(),
            })),
        };
        if items.send(options).await.is_err() {
            return;
        }
        for index in 0..total as u64 {
            let ticket = Ticket {
                external_id: format!("bench-{run}-{index}"),
                ..seeded_ticket(index)
            };
            let item = ImportTicketsRequest {
                kind: Some(Kind::Item(ImportItem {
                    offset: index as i64,
                    ticket: Some(ticket),
                    comments: Vec::new(),
                })),
            };
            if items.send(item).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let memory_before = args.server_pid.and_then(resident_kib);
    let mut answers = TicketServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .import_tickets(ReceiverStream::new(requests))
        .await?
        .into_inner();
    let (mut imported, mut refused, mut memory_peak) = (0usize, 0usize, memory_before.unwrap_or(0));
    let step = (total / 10).max(1);
    while let Some(answer) = answers.message().await? {
        if answer.status.is_some() {
            refused += 1;
        } else {
            imported += 1;
        }
        if (imported + refused) % step == 0
            && let Some(kib) = args.server_pid.and_then(resident_kib)
        {
            memory_peak = memory_peak.max(kib);
            println!("  {:>7} answered, server RSS {kib} KiB", imported + refused);
        }
    }
    producer.await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "import: {imported} tickets imported, {refused} refused, in {elapsed:.1}s = {:.0} tickets/s",
        imported as f64 / elapsed
    );
    if let Some(before) = memory_before {
        println!(
            "import: server RSS {before} KiB before, {memory_peak} KiB at most during the stream"
        );
    }
    Ok(())
}
