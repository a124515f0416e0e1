//! Tickets loaded before measuring: `--seed` realistic ones and the hot tickets the scenarios work on.

use std::{sync::Arc, time::Instant};

use ticketd::proto::{
    BatchCreateTicketsRequest, CreateTicketRequest, Ticket,
    ticket_service_client::TicketServiceClient,
};

use crate::{
    args::Args,
    scenarios::{Conn, new_ticket},
};

/// Words seeded tickets are written with; searches pick from them.
pub const WORDS: [&str; 24] = [
    "printer", "jam", "login", "password", "invoice", "refund", "shipping", "delay", "crash",
    "update", "billing", "account", "locked", "email", "bounce", "export", "report", "slow",
    "timeout", "error", "mobile", "sync", "license", "upgrade",
];
/// Agents seeded tickets are assigned to (`agent-0` …).
pub const AGENTS: u64 = 50;
/// Organizations seeded tickets belong to (`org-0` …).
const ORGANIZATIONS: u64 = 1_000;
/// Tickets per BatchCreateTickets call.
const SEED_BATCH: usize = 100;

/// Loads `--seed` tickets, `--concurrency` batches at a time.
pub async fn seed(args: &Args, channels: &[Conn]) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    create_in_batches(channels, args.seed, args.concurrency, None).await?;
    println!(
        "seeded {} tickets in {:.1}s",
        args.seed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Creates `total` [`seeded_ticket`]s with BatchCreateTickets, [`SEED_BATCH`] per call, `loaders` calls at once,
/// each call asking for `side_effects`.
pub async fn create_in_batches(
    channels: &[Conn],
    total: usize,
    loaders: usize,
    side_effects: Option<ticketd::proto::SideEffects>,
) -> Result<(), Box<dyn std::error::Error>> {
    let batches = total.div_ceil(SEED_BATCH);
    let next_batch = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for loader in 0..loaders.max(1) {
        let mut client = TicketServiceClient::new(channels[loader % channels.len()].clone());
        let next_batch = Arc::clone(&next_batch);
        tasks.push(tokio::spawn(async move {
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
                        side_effects,
                    })
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// A varied ticket: numbers are spread with a multiplicative hash so neighbours differ.
pub fn seeded_ticket(index: u64) -> Ticket {
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

/// Creates the `--hot-tickets` tickets the `get` and `update` scenarios and `watch-fanout` work on.
pub async fn seed_hot_tickets(
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

/// Creates `--rules` enabled rules (see [`Args::rules`]); an existing set from an earlier run is added to.
pub async fn create_rules(args: &Args, channel: Conn) -> Result<(), Box<dyn std::error::Error>> {
    use ticketd::proto::{
        CreateRuleRequest, Rule, RuleAction, rule::TriggerEvent, rule_action,
        rule_service_client::RuleServiceClient,
    };
    let mut client = RuleServiceClient::new(channel);
    for n in 0..args.rules {
        // Both terms are evaluated on every write; only `--rules-fire` lets them match.
        let condition = if args.rules_fire {
            format!("stage.state = OPEN AND NOT tags:\"bench-rule-{n}\"")
        } else {
            format!("priority = URGENT AND tags:\"bench-rule-{n}\"")
        };
        client
            .create_rule(CreateRuleRequest {
                rule: Some(Rule {
                    name: format!("bench rule {n}"),
                    enabled: true,
                    on: vec![
                        TriggerEvent::TicketCreated.into(),
                        TriggerEvent::TicketUpdated.into(),
                    ],
                    condition,
                    actions: vec![RuleAction {
                        action: Some(rule_action::Action::AddTag(format!("bench-rule-{n}"))),
                    }],
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await?;
    }
    println!(
        "created {} rules ({})",
        args.rules,
        if args.rules_fire {
            "each fires on every create"
        } else {
            "none matches"
        }
    );
    Ok(())
}
