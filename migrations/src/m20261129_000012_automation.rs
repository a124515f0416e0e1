//! Automation: `rules`, `webhooks`, the durable `webhook_deliveries` queue with its `webhook_attempts`, and
//! `ticket_events.cause_event_id` (a rule's change names the event that set the rule off).
//!
//! A delivery is written in the same transaction as the event it delivers, so the queue is exactly as durable
//! as the write. Workers find due deliveries through `webhook_deliveries_due` (status, due time); per-ticket
//! order is kept by looking for an earlier unfinished delivery of the same webhook and ticket through
//! `webhook_deliveries_order`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rules {
    Table,
    Id,
    Name,
    Enabled,
    Position,
    Definition,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    EventTypes,
    Condition,
    Description,
    Enabled,
    DisabledReason,
    Secret,
    PreviousSecret,
    PreviousSecretExpireTime,
    FailingSince,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    EventId,
    TicketId,
    EventType,
    Status,
    NextAttemptTime,
    AttemptCount,
    TraceParent,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    AttemptTime,
    HttpStatus,
    DurationMicros,
    Response,
}

#[derive(DeriveIden)]
enum TicketEvents {
    Table,
    CauseEventId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Rules::Table)
                    .col(big_pk_auto(Rules::Id))
                    .col(text(Rules::Name))
                    .col(boolean(Rules::Enabled))
                    .col(integer(Rules::Position))
                    // Triggers, condition, changed fields and actions: read and written whole, never queried.
                    .col(ColumnDef::new(Rules::Definition).json_binary().not_null())
                    .col(big_integer(Rules::Version).default(1))
                    .col(timestamp_with_time_zone(Rules::CreateTime))
                    .col(timestamp_with_time_zone(Rules::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("rules_position_id")
                    .table(Rules::Table)
                    .col(Rules::Position)
                    .col(Rules::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(big_pk_auto(Webhooks::Id))
                    .col(text(Webhooks::Url))
                    .col(
                        ColumnDef::new(Webhooks::EventTypes)
                            .json_binary()
                            .not_null(),
                    )
                    .col(text(Webhooks::Condition).default(""))
                    .col(text(Webhooks::Description).default(""))
                    .col(boolean(Webhooks::Enabled))
                    .col(text(Webhooks::DisabledReason).default(""))
                    .col(text(Webhooks::Secret))
                    .col(text_null(Webhooks::PreviousSecret))
                    .col(timestamp_with_time_zone_null(
                        Webhooks::PreviousSecretExpireTime,
                    ))
                    .col(timestamp_with_time_zone_null(Webhooks::FailingSince))
                    .col(big_integer(Webhooks::Version).default(1))
                    .col(timestamp_with_time_zone(Webhooks::CreateTime))
                    .col(timestamp_with_time_zone(Webhooks::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(big_integer(WebhookDeliveries::WebhookId))
                    .col(big_integer(WebhookDeliveries::EventId))
                    .col(big_integer(WebhookDeliveries::TicketId))
                    .col(text(WebhookDeliveries::EventType))
                    .col(text(WebhookDeliveries::Status))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptTime))
                    .col(integer(WebhookDeliveries::AttemptCount).default(0))
                    // W3C traceparent of the write that enqueued it: each attempt's span links to it.
                    .col(text(WebhookDeliveries::TraceParent).default(""))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreateTime))
                    .col(timestamp_with_time_zone(WebhookDeliveries::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // An event reaches a webhook once, whichever path enqueued it (subscription or a rule's action).
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_webhook_event")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptTime)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_order")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::TicketId)
                    .col(WebhookDeliveries::EventId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(big_pk_auto(WebhookAttempts::Id))
                    .col(big_integer(WebhookAttempts::DeliveryId))
                    .col(timestamp_with_time_zone(WebhookAttempts::AttemptTime))
                    .col(integer(WebhookAttempts::HttpStatus))
                    .col(big_integer(WebhookAttempts::DurationMicros))
                    .col(text(WebhookAttempts::Response))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                            .to(WebhookDeliveries::Table, WebhookDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .col(WebhookAttempts::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TicketEvents::Table)
                    .add_column(big_integer_null(TicketEvents::CauseEventId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TicketEvents::Table)
                    .drop_column(TicketEvents::CauseEventId)
                    .to_owned(),
            )
            .await?;
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            Webhooks::Table.into_iden(),
            Rules::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
