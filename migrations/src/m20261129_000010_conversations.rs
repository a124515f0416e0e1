//! Conversations handed over by chat tools (`EscalationService`).
//!
//! `conversation_tickets` holds each conversation's tickets in order: `sequence` 0 is the ticket the first
//! escalation created, 1 its first follow-up, and so on. Its primary key is what makes "exactly one ticket per
//! conversation" true across replicas: two escalations racing on one PostgreSQL both try to insert the same
//! `(source, conversation_id, sequence)`; the second waits for the first to commit, fails on the key, and its
//! transaction (ticket included) rolls back and is retried, finding the winner's ticket. A check-then-insert
//! could not do that.
//!
//! `conversation_messages` holds a key per transcript message already added, so a repeat call appends only
//! what is new; the primary key keeps two racing calls from both adding one message.
//!
//! `association_types` gains the system ticket→ticket type that links a follow-up to the ticket it follows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConversationTickets {
    Table,
    Source,
    ConversationId,
    Sequence,
    TicketId,
    CreateTime,
}

#[derive(DeriveIden)]
enum ConversationMessages {
    Table,
    Source,
    ConversationId,
    MessageKey,
    TicketId,
    CreateTime,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AssociationTypes {
    Table,
    Id,
    Category,
    FromObjectType,
    ToObjectType,
    Label,
    InverseLabel,
    CreateTime,
}

/// The follow-up link type's id: below the first id administrators' types get (1000), clear of HubSpot's.
const FOLLOW_UP_TYPE_ID: i64 = 900;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConversationTickets::Table)
                    .col(text(ConversationTickets::Source))
                    .col(text(ConversationTickets::ConversationId))
                    .col(integer(ConversationTickets::Sequence))
                    .col(big_integer(ConversationTickets::TicketId))
                    .col(timestamp_with_time_zone(ConversationTickets::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(ConversationTickets::Source)
                            .col(ConversationTickets::ConversationId)
                            .col(ConversationTickets::Sequence),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("conversation_tickets_ticket_fk")
                            .from(ConversationTickets::Table, ConversationTickets::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("conversation_tickets_ticket_id")
                    .table(ConversationTickets::Table)
                    .col(ConversationTickets::TicketId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConversationMessages::Table)
                    .col(text(ConversationMessages::Source))
                    .col(text(ConversationMessages::ConversationId))
                    .col(text(ConversationMessages::MessageKey))
                    .col(big_integer(ConversationMessages::TicketId))
                    .col(timestamp_with_time_zone(ConversationMessages::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(ConversationMessages::Source)
                            .col(ConversationMessages::ConversationId)
                            .col(ConversationMessages::MessageKey),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("conversation_messages_ticket_fk")
                            .from(ConversationMessages::Table, ConversationMessages::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
        // An administrator may already have made a ticket→ticket type with this label; theirs is then used.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AssociationTypes::Table)
                    .columns([
                        AssociationTypes::Id,
                        AssociationTypes::Category,
                        AssociationTypes::FromObjectType,
                        AssociationTypes::ToObjectType,
                        AssociationTypes::Label,
                        AssociationTypes::InverseLabel,
                        AssociationTypes::CreateTime,
                    ])
                    .values_panic([
                        FOLLOW_UP_TYPE_ID.into(),
                        "SYSTEM".into(),
                        "ticket".into(),
                        "ticket".into(),
                        "follow_up_of".into(),
                        "has_follow_up".into(),
                        now.into(),
                    ])
                    .on_conflict(OnConflict::new().do_nothing().to_owned())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(
                Query::delete()
                    .from_table(AssociationTypes::Table)
                    .and_where(Expr::col(AssociationTypes::Id).eq(FOLLOW_UP_TYPE_ID))
                    .to_owned(),
            )
            .await?;
        for table in [
            ConversationMessages::Table.into_iden(),
            ConversationTickets::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
