//! Who may see what: customer portals, ticket and project followers, the ticket's project, and time entries.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    ProjectId,
}

#[derive(DeriveIden)]
enum Portals {
    Table,
    Id,
    Name,
    RequestedTickets,
    FollowedTickets,
    OrganizationTickets,
    FollowedProjectTickets,
    TicketTypes,
    VisibleProperties,
    EditableProperties,
    TimeLogging,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum TicketFollowers {
    Table,
    TicketId,
    FollowerId,
    CreateTime,
}

#[derive(DeriveIden)]
enum ProjectFollowers {
    Table,
    ProjectId,
    Kind,
    FollowerId,
    CreateTime,
}

#[derive(DeriveIden)]
enum TimeEntries {
    Table,
    Id,
    TicketId,
    AuthorId,
    Minutes,
    WorkDate,
    Note,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(text(Tickets::ProjectId).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tickets_project_id")
                    .table(Tickets::Table)
                    .col(Tickets::ProjectId)
                    .col(Tickets::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Portals::Table)
                    .col(big_pk_auto(Portals::Id))
                    .col(text(Portals::Name))
                    .col(boolean(Portals::RequestedTickets).default(false))
                    .col(boolean(Portals::FollowedTickets).default(false))
                    .col(boolean(Portals::OrganizationTickets).default(false))
                    .col(boolean(Portals::FollowedProjectTickets).default(false))
                    .col(
                        ColumnDef::new(Portals::TicketTypes)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Portals::VisibleProperties)
                            .json_binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Portals::EditableProperties)
                            .json_binary()
                            .not_null(),
                    )
                    .col(boolean(Portals::TimeLogging).default(false))
                    .col(big_integer(Portals::Version).default(1))
                    .col(timestamp_with_time_zone(Portals::CreateTime))
                    .col(timestamp_with_time_zone(Portals::UpdateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TicketFollowers::Table)
                    .col(big_integer(TicketFollowers::TicketId))
                    .col(text(TicketFollowers::FollowerId))
                    .col(timestamp_with_time_zone(TicketFollowers::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(TicketFollowers::TicketId)
                            .col(TicketFollowers::FollowerId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("ticket_followers_ticket_fk")
                            .from(TicketFollowers::Table, TicketFollowers::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "Which tickets does this customer follow": the visibility rule's subquery.
        manager
            .create_index(
                Index::create()
                    .name("ticket_followers_follower")
                    .table(TicketFollowers::Table)
                    .col(TicketFollowers::FollowerId)
                    .col(TicketFollowers::TicketId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProjectFollowers::Table)
                    .col(text(ProjectFollowers::ProjectId))
                    .col(text(ProjectFollowers::Kind))
                    .col(text(ProjectFollowers::FollowerId))
                    .col(timestamp_with_time_zone(ProjectFollowers::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(ProjectFollowers::ProjectId)
                            .col(ProjectFollowers::Kind)
                            .col(ProjectFollowers::FollowerId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("project_followers_follower")
                    .table(ProjectFollowers::Table)
                    .col(ProjectFollowers::Kind)
                    .col(ProjectFollowers::FollowerId)
                    .col(ProjectFollowers::ProjectId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TimeEntries::Table)
                    .col(big_pk_auto(TimeEntries::Id))
                    .col(big_integer(TimeEntries::TicketId))
                    .col(text(TimeEntries::AuthorId))
                    .col(integer(TimeEntries::Minutes))
                    .col(text(TimeEntries::WorkDate))
                    .col(text(TimeEntries::Note).default(""))
                    .col(timestamp_with_time_zone(TimeEntries::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("time_entries_ticket_fk")
                            .from(TimeEntries::Table, TimeEntries::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("time_entries_ticket")
                    .table(TimeEntries::Table)
                    .col(TimeEntries::TicketId)
                    .col(TimeEntries::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TimeEntries::Table.into_iden(),
            ProjectFollowers::Table.into_iden(),
            TicketFollowers::Table.into_iden(),
            Portals::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("tickets_project_id")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::ProjectId)
                    .to_owned(),
            )
            .await
    }
}
