//! `watch-fanout` (and `raw-broadcast`, the same against a bare tonic broadcast): many WatchTickets streams,
//! one writer, delivery latency and the server's memory.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use ticketd::proto::{
    Ticket, UpdateTicketRequest, WatchTicketsRequest, ticket_service_client::TicketServiceClient,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_prost::prost::Message;

use crate::{
    args::{Args, Scenario},
    scenarios::Conn,
};

/// Opens the streams, drives the writer for the duration, and reports delivery latency and memory.
pub async fn watch_fanout(
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
            let mut message_bytes = 0u64;
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
                        return (latencies, message_bytes, 1u64);
                    }
                }
            };
            let _ = ready_tx.send(true).await;
            loop {
                tokio::select! {
                    _ = stop.notified() => return (latencies, message_bytes, 0),
                    message = stream.next() => match message {
                        Some(Ok(event)) => {
                            message_bytes += event.encoded_len() as u64;
                            if let Some(created) = event.create_time {
                                let created = Duration::new(created.seconds as u64, created.nanos as u32);
                                let now = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap_or_default();
                                latencies.push(now.saturating_sub(created));
                            }
                        }
                        _ => return (latencies, message_bytes, 1),
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
                ..Default::default()
            })
            .await?;
    }
    // Give the last events time to arrive before stopping the subscribers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.notify_waiters();
    let mut latencies = Vec::new();
    let mut broken = 0;
    let mut message_bytes = 0;
    for subscriber in subscribers {
        let (mut mine, bytes, failed) = subscriber.await?;
        latencies.append(&mut mine);
        message_bytes += bytes;
        broken += failed;
    }
    let mean_message = message_bytes / (latencies.len() as u64).max(1);
    let scenario = match args.scenario {
        Scenario::RawBroadcast => "RawBroadcast",
        _ => "WatchFanout",
    };
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
        "scenario={scenario} subscribers={opened} writes={writes} delivered={}/{expected} broken_streams={broken} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms server_rss_before={:?}KiB server_rss_open={:?}KiB per_stream={per_stream} message_bytes={mean_message}",
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

/// Resident memory of a process in KiB, from /proc.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
