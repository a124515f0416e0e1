//! Pipelines, stages, tickets and request-id records, plus the default pipeline every install starts with.

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Pipelines {
    Table,
    Id,
    Label,
    DisplayOrder,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Stages {
    Table,
    Id,
    PipelineId,
    Label,
    DisplayOrder,
    State,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    Subject,
    Content,
    PipelineId,
    StageId,
    Priority,
    RequesterId,
    AssigneeId,
    OrganizationId,
    TicketType,
    Tags,
    Properties,
    CreateTime,
    UpdateTime,
    CloseTime,
    ArchiveTime,
    Version,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    RequestId,
    Operation,
    Fingerprint,
    Response,
    CreateTime,
}

/// HubSpot's default support pipeline: id 0, stages 1–4.
const DEFAULT_STAGES: [(i64, &str, &str); 4] = [
    (1, "New", "OPEN"),
    (2, "Waiting on contact", "OPEN"),
    (3, "Waiting on us", "OPEN"),
    (4, "Closed", "CLOSED"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Pipelines::Table)
                    .col(big_pk_auto(Pipelines::Id))
                    .col(text(Pipelines::Label))
                    .col(integer(Pipelines::DisplayOrder).default(0))
                    .col(big_integer(Pipelines::Version).default(1))
                    .col(timestamp_with_time_zone(Pipelines::CreateTime))
                    .col(timestamp_with_time_zone(Pipelines::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("pipelines_display_order_id")
                    .table(Pipelines::Table)
                    .col(Pipelines::DisplayOrder)
                    .col(Pipelines::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Stages::Table)
                    .col(big_pk_auto(Stages::Id))
                    .col(big_integer(Stages::PipelineId))
                    .col(text(Stages::Label))
                    .col(integer(Stages::DisplayOrder).default(0))
                    .col(
                        text(Stages::State)
                            .check(Expr::col(Stages::State).is_in(["OPEN", "CLOSED"])),
                    )
                    .col(big_integer(Stages::Version).default(1))
                    .col(timestamp_with_time_zone(Stages::CreateTime))
                    .col(timestamp_with_time_zone(Stages::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("stages_pipeline_fk")
                            .from(Stages::Table, Stages::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Lets tickets reference (stage, pipeline) as one key, so the database itself refuses a ticket whose
        // stage belongs to another pipeline.
        manager
            .create_index(
                Index::create()
                    .name("stages_id_pipeline")
                    .table(Stages::Table)
                    .col(Stages::Id)
                    .col(Stages::PipelineId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("stages_pipeline_label")
                    .table(Stages::Table)
                    .col(Stages::PipelineId)
                    .col(Stages::Label)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(big_pk_auto(Tickets::Id))
                    .col(text(Tickets::Subject))
                    .col(text(Tickets::Content).default(""))
                    .col(big_integer(Tickets::PipelineId))
                    .col(big_integer(Tickets::StageId))
                    .col(text_null(Tickets::Priority))
                    .col(text(Tickets::RequesterId).default(""))
                    .col(text(Tickets::AssigneeId).default(""))
                    .col(text(Tickets::OrganizationId).default(""))
                    .col(text(Tickets::TicketType).default(""))
                    .col(ColumnDef::new(Tickets::Tags).json_binary().not_null())
                    .col(ColumnDef::new(Tickets::Properties).json_binary().not_null())
                    .col(timestamp_with_time_zone(Tickets::CreateTime))
                    .col(timestamp_with_time_zone(Tickets::UpdateTime))
                    .col(timestamp_with_time_zone_null(Tickets::CloseTime))
                    .col(timestamp_with_time_zone_null(Tickets::ArchiveTime))
                    .col(big_integer(Tickets::Version).default(1))
                    .foreign_key(
                        ForeignKey::create()
                            .name("tickets_pipeline_fk")
                            .from(Tickets::Table, Tickets::PipelineId)
                            .to(Pipelines::Table, Pipelines::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("tickets_stage_in_pipeline_fk")
                            .from(Tickets::Table, (Tickets::StageId, Tickets::PipelineId))
                            .to(Stages::Table, (Stages::Id, Stages::PipelineId))
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Keyset paging: each supported order is (column, id), with archived rows filtered out.
        for (name, column) in [
            ("tickets_create_time_id", Tickets::CreateTime),
            ("tickets_update_time_id", Tickets::UpdateTime),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tickets::Table)
                        .col(column)
                        .col(Tickets::Id)
                        .to_owned(),
                )
                .await?;
        }
        // Deleting a stage or pipeline asks "is any ticket still here?"; these make that an index probe.
        for (name, columns) in [
            (
                "tickets_stage_pipeline",
                vec![Tickets::StageId, Tickets::PipelineId],
            ),
            ("tickets_pipeline", vec![Tickets::PipelineId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Tickets::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::RequestId).primary_key())
                    .col(text(IdempotencyKeys::Operation))
                    .col(text(IdempotencyKeys::Fingerprint))
                    .col(
                        ColumnDef::new(IdempotencyKeys::Response)
                            .json_binary()
                            .null(),
                    )
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_create_time")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreateTime)
                    .to_owned(),
            )
            .await?;

        seed_default_pipeline(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            Tickets::Table.into_iden(),
            Stages::Table.into_iden(),
            Pipelines::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn seed_default_pipeline(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Microseconds: the precision PostgreSQL keeps, so both databases hold the same value.
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    manager
        .exec_stmt(
            Query::insert()
                .into_table(Pipelines::Table)
                .columns([
                    Pipelines::Id,
                    Pipelines::Label,
                    Pipelines::DisplayOrder,
                    Pipelines::CreateTime,
                    Pipelines::UpdateTime,
                ])
                .values_panic([
                    0.into(),
                    "Support Pipeline".into(),
                    0.into(),
                    now.into(),
                    now.into(),
                ])
                .to_owned(),
        )
        .await?;
    let mut stages = Query::insert();
    stages.into_table(Stages::Table).columns([
        Stages::Id,
        Stages::PipelineId,
        Stages::Label,
        Stages::DisplayOrder,
        Stages::State,
        Stages::CreateTime,
        Stages::UpdateTime,
    ]);
    for (position, (id, label, state)) in DEFAULT_STAGES.into_iter().enumerate() {
        stages.values_panic([
            id.into(),
            0i64.into(),
            label.into(),
            (position as i32).into(),
            state.into(),
            now.into(),
            now.into(),
        ]);
    }
    manager.exec_stmt(stages.to_owned()).await?;
    // Explicit ids do not advance PostgreSQL's identity sequence; without this the next stage would collide
    // with stage 1. SQLite's AUTOINCREMENT already accounts for explicit ids.
    if manager.get_database_backend() == DbBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared(
                "SELECT setval(pg_get_serial_sequence('stages', 'id'), (SELECT MAX(id) FROM stages))",
            )
            .await?;
    }
    Ok(())
}
