//! `agents`: the directory of the people tickets are assigned to.
//!
//! Addresses are unique ignoring letter case through `email_key`, the lower-cased address kept beside the one
//! sent: a unique index on it holds on SQLite and PostgreSQL alike (neither `lower()` nor a collation would
//! agree between them on every character), so two concurrent creates of one address cannot both commit.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    Email,
    EmailKey,
    DisplayName,
    Active,
    Version,
    CreateTime,
    UpdateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Agents::Table)
                    .col(text(Agents::Id).primary_key())
                    .col(text(Agents::Email))
                    .col(text(Agents::EmailKey))
                    .col(text(Agents::DisplayName).default(""))
                    .col(boolean(Agents::Active).default(true))
                    .col(big_integer(Agents::Version).default(1))
                    .col(timestamp_with_time_zone(Agents::CreateTime))
                    .col(timestamp_with_time_zone(Agents::UpdateTime))
                    .to_owned(),
            )
            .await?;
        // The store tells a taken address from a taken id by this name in the violation's message.
        manager
            .create_index(
                Index::create()
                    .name("agents_email_key")
                    .table(Agents::Table)
                    .col(Agents::EmailKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Listing by id reads the primary key; listing only active (or inactive) agents reads this one.
        manager
            .create_index(
                Index::create()
                    .name("agents_active_id")
                    .table(Agents::Table)
                    .col(Agents::Active)
                    .col(Agents::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Agents::Table).to_owned())
            .await
    }
}
