//! The request loop of the gRPC scenarios: one call at a time per worker until the deadline.

use std::time::Instant;

use ticketd::proto::{
    CreatePropertyRequest, CreateTicketRequest, Filter, FilterGroup, FilterOperator,
    GetTicketRequest, Priority, PropertyDefinition, PropertyType, SearchTicketsRequest, Ticket,
    UpdateTicketRequest, property_service_client::PropertyServiceClient,
    ticket_service_client::TicketServiceClient,
};
use tokio::sync::Mutex;
use tonic::{
    Code,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    args::Scenario,
    seed::{AGENTS, WORDS},
    tally::{Tally, Xorshift},
};

/// Adds the `--token` to every call, when one was given.
#[derive(Clone)]
pub struct BearerToken(pub Option<MetadataValue<Ascii>>);

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
pub type Conn = InterceptedService<Channel, BearerToken>;

/// The NUMBER properties the scenarios write; already defined is fine.
pub async fn define_properties(
    mut client: PropertyServiceClient<Conn>,
) -> Result<(), tonic::Status> {
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

/// A small ticket, as the `create` scenario and the hot tickets write it.
pub fn new_ticket(subject: &str) -> Ticket {
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

/// One worker of a gRPC scenario: calls until `deadline`, then adds its tally to the shared one.
pub async fn run_worker(
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
                    ..Default::default()
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
            | Scenario::RawBroadcast
            | Scenario::Import
            | Scenario::Webhooks
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
            ..Default::default()
        };
        match client.update_ticket(update).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == Code::Aborted => *aborted_retries += 1,
            Err(status) => return Err(status),
        }
    }
}
