//! Schema migrations: the only way ticketd's schema changes. Run by `ticketd serve` at start-up and by
//! `ticketd migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_core;
mod m20261122_000002_data_api;
mod m20261122_000003_streams_cards;
mod m20261122_000004_access;
mod m20261122_000005_outbox_position;
mod m20261122_000006_definitions_for_write;
mod m20261129_000007_request_ids_per_caller;
mod m20261129_000008_agents;
mod m20261129_000009_event_side_effects;
mod m20261129_000010_conversations;
mod m20261129_000011_ticket_external_id;
mod m20261129_000012_automation;
mod m20261129_000013_outbox_without_lock;
mod m20261129_000014_config_generation;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_core::Migration),
            Box::new(m20261122_000002_data_api::Migration),
            Box::new(m20261122_000003_streams_cards::Migration),
            Box::new(m20261122_000004_access::Migration),
            Box::new(m20261122_000005_outbox_position::Migration),
            Box::new(m20261122_000006_definitions_for_write::Migration),
            Box::new(m20261129_000007_request_ids_per_caller::Migration),
            Box::new(m20261129_000008_agents::Migration),
            Box::new(m20261129_000009_event_side_effects::Migration),
            Box::new(m20261129_000010_conversations::Migration),
            Box::new(m20261129_000011_ticket_external_id::Migration),
            Box::new(m20261129_000012_automation::Migration),
            Box::new(m20261129_000013_outbox_without_lock::Migration),
            Box::new(m20261129_000014_config_generation::Migration),
        ]
    }
}
