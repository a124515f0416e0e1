//! Ticket snapshots on history entries (what streams deliver), chat card templates, cards, and the card
//! renders that WatchCard streams.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TicketEvents {
    Table,
    Ticket,
}

#[derive(DeriveIden)]
enum CardTemplates {
    Table,
    Id,
    Name,
    Schema,
    AppModel,
    Bindings,
    CreateTime,
}

#[derive(DeriveIden)]
enum Cards {
    Table,
    Id,
    TemplateId,
    TicketId,
    GroupId,
    Subscribers,
    SendToAllSubscribers,
    Properties,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum CardRenders {
    Table,
    Position,
    CardId,
    Version,
    TicketId,
    GroupId,
    View,
    Texts,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The ticket as it was when the change committed: streams deliver it without another read.
        manager
            .alter_table(
                Table::alter()
                    .table(TicketEvents::Table)
                    .add_column(ColumnDef::new(TicketEvents::Ticket).json_binary().null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CardTemplates::Table)
                    .col(big_pk_auto(CardTemplates::Id))
                    .col(text(CardTemplates::Name))
                    .col(text(CardTemplates::Schema))
                    .col(text(CardTemplates::AppModel).default(""))
                    .col(
                        ColumnDef::new(CardTemplates::Bindings)
                            .json_binary()
                            .not_null(),
                    )
                    .col(timestamp_with_time_zone(CardTemplates::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Cards::Table)
                    .col(big_pk_auto(Cards::Id))
                    .col(big_integer(Cards::TemplateId))
                    .col(big_integer(Cards::TicketId))
                    .col(text(Cards::GroupId))
                    .col(ColumnDef::new(Cards::Subscribers).json_binary().not_null())
                    .col(boolean(Cards::SendToAllSubscribers).default(false))
                    .col(ColumnDef::new(Cards::Properties).json_binary().not_null())
                    .col(big_integer(Cards::Version).default(1))
                    .col(timestamp_with_time_zone(Cards::CreateTime))
                    .col(timestamp_with_time_zone(Cards::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("cards_template_fk")
                            .from(Cards::Table, Cards::TemplateId)
                            .to(CardTemplates::Table, CardTemplates::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("cards_ticket_fk")
                            .from(Cards::Table, Cards::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("cards_ticket_id", Cards::TicketId),
            ("cards_group_id", Cards::GroupId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Cards::Table)
                        .col(column)
                        .col(Cards::Id)
                        .to_owned(),
                )
                .await?;
        }

        // Every version of every card, rendered when it was written: WatchCard streams these rows in
        // `position` order, which is commit order (appends are serialised like history entries).
        manager
            .create_table(
                Table::create()
                    .table(CardRenders::Table)
                    .col(big_pk_auto(CardRenders::Position))
                    .col(big_integer(CardRenders::CardId))
                    .col(big_integer(CardRenders::Version))
                    .col(big_integer(CardRenders::TicketId))
                    .col(text(CardRenders::GroupId))
                    .col(text(CardRenders::View))
                    .col(ColumnDef::new(CardRenders::Texts).json_binary().not_null())
                    .col(timestamp_with_time_zone(CardRenders::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("card_renders_card_fk")
                            .from(CardRenders::Table, CardRenders::CardId)
                            .to(Cards::Table, Cards::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("card_renders_card_version")
                    .table(CardRenders::Table)
                    .col(CardRenders::CardId)
                    .col(CardRenders::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CardRenders::Table.into_iden(),
            Cards::Table.into_iden(),
            CardTemplates::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(TicketEvents::Table)
                    .drop_column(TicketEvents::Ticket)
                    .to_owned(),
            )
            .await
    }
}
