//! `ticket_events.notify` and `ticket_events.skip_automations`: the side effects the write that produced each
//! event chose (see `SideEffects` in `src/domain/event.rs`), so notifiers, rules and stream consumers can
//! honour them.
//!
//! The defaults are what every write meant before writes could choose: rows written before this migration —
//! and rows a replica of the previous release writes during a rolling upgrade — read as "notify everyone,
//! run automations". One column per statement because SQLite's `ALTER TABLE` adds one at a time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TicketEvents {
    Table,
    Notify,
    SkipAutomations,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text(TicketEvents::Notify).default("ALL").to_owned(),
            boolean(TicketEvents::SkipAutomations)
                .default(false)
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(TicketEvents::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [TicketEvents::SkipAutomations, TicketEvents::Notify] {
            manager
                .alter_table(
                    Table::alter()
                        .table(TicketEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
