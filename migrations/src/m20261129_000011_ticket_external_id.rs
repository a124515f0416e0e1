//! `tickets.external_id`: a ticket's id in the system it came from (a Zendesk ticket id, say), unique when set.
//!
//! None is stored as NULL, not "": a unique index never finds two NULLs equal, on SQLite and PostgreSQL
//! alike, so any number of tickets may have none. The index also serves lookups and filters by the id. Tickets
//! already stored have none.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    ExternalId,
}

/// The store tells a taken external id from any other unique key by this name in the violation's message.
const INDEX: &str = "tickets_external_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(text_null(Tickets::ExternalId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Tickets::Table)
                    .col(Tickets::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Tickets::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::ExternalId)
                    .to_owned(),
            )
            .await
    }
}
