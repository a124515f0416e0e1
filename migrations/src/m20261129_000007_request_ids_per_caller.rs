//! `request_ids`: request ids scoped to the caller that sent them (AIP-155 says a request id is unique per
//! client), keyed by `(caller, request_id)`. `idempotency_keys` held them in one namespace for every caller,
//! so a caller could learn that another had used an id, or claim ids another would use.
//!
//! A new table rather than a changed key: replicas of the previous release keep using `idempotency_keys`
//! during a rolling upgrade, whose `ON CONFLICT (request_id)` needs that table's key as it is. The cost is
//! that a retry which crosses from an old replica to a new one is not recognised as a retry. The purge
//! empties `idempotency_keys` within the request id TTL; a later migration drops it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RequestIds {
    Table,
    Caller,
    RequestId,
    Operation,
    Fingerprint,
    Response,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RequestIds::Table)
                    .col(text(RequestIds::Caller))
                    .col(text(RequestIds::RequestId))
                    .col(text(RequestIds::Operation))
                    .col(text(RequestIds::Fingerprint))
                    .col(ColumnDef::new(RequestIds::Response).json_binary().null())
                    .col(timestamp_with_time_zone(RequestIds::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(RequestIds::Caller)
                            .col(RequestIds::RequestId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("request_ids_create_time")
                    .table(RequestIds::Table)
                    .col(RequestIds::CreateTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RequestIds::Table).to_owned())
            .await
    }
}
