//! Custom property definitions and typed values, comments, associations, full-text search and the ticket
//! history (the outbox the streams read).

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    Properties,
    AssigneeId,
    OrganizationId,
    RequesterId,
    StageId,
    ArchiveTime,
}

#[derive(DeriveIden)]
enum PropertyDefinitions {
    Table,
    Name,
    Label,
    Description,
    GroupName,
    Type,
    Options,
    Required,
    DefaultValue,
    AgentOnly,
    CustomerVisible,
    CustomerEditable,
    Version,
    CreateTime,
    UpdateTime,
    ArchiveTime,
}

#[derive(DeriveIden)]
enum TicketPropertyValues {
    Table,
    TicketId,
    Name,
    Value,
    NumberValue,
    TimeValue,
    Tokens,
}

#[derive(DeriveIden)]
enum Comments {
    Table,
    Id,
    TicketId,
    AuthorId,
    Body,
    Visibility,
    CreateTime,
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

#[derive(DeriveIden)]
enum Associations {
    Table,
    Id,
    TicketId,
    ToObjectType,
    ToObjectId,
    AssociationTypeId,
    Inverse,
    CreateTime,
}

#[derive(DeriveIden)]
enum TicketEvents {
    Table,
    EventId,
    TicketId,
    Kind,
    ActorId,
    Changes,
    Detail,
    CreateTime,
}

/// HubSpot's unlabelled association types between tickets and other objects (`associationTypeId`), both
/// directions; from HubSpot's "association type IDs" reference (CRM API v4).
const SYSTEM_ASSOCIATION_TYPES: [(i64, &str, &str); 14] = [
    (16, "ticket", "contact"),
    (15, "contact", "ticket"),
    (26, "ticket", "company"),
    (25, "company", "ticket"),
    (28, "ticket", "deal"),
    (27, "deal", "ticket"),
    (32, "ticket", "conversation"),
    (31, "conversation", "ticket"),
    (228, "ticket", "note"),
    (227, "note", "ticket"),
    (224, "ticket", "email"),
    (223, "email", "ticket"),
    (230, "ticket", "task"),
    (229, "task", "ticket"),
];

/// User-defined association types are numbered from here, clear of HubSpot's system ids.
const FIRST_USER_ASSOCIATION_TYPE_ID: i64 = 1000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();

        manager
            .create_table(
                Table::create()
                    .table(PropertyDefinitions::Table)
                    .col(text(PropertyDefinitions::Name).primary_key())
                    .col(text(PropertyDefinitions::Label))
                    .col(text(PropertyDefinitions::Description).default(""))
                    .col(text(PropertyDefinitions::GroupName).default(""))
                    .col(text(PropertyDefinitions::Type))
                    .col(
                        ColumnDef::new(PropertyDefinitions::Options)
                            .json_binary()
                            .not_null(),
                    )
                    .col(boolean(PropertyDefinitions::Required).default(false))
                    .col(text_null(PropertyDefinitions::DefaultValue))
                    .col(boolean(PropertyDefinitions::AgentOnly).default(false))
                    .col(boolean(PropertyDefinitions::CustomerVisible).default(false))
                    .col(boolean(PropertyDefinitions::CustomerEditable).default(false))
                    .col(big_integer(PropertyDefinitions::Version).default(1))
                    .col(timestamp_with_time_zone(PropertyDefinitions::CreateTime))
                    .col(timestamp_with_time_zone(PropertyDefinitions::UpdateTime))
                    .col(timestamp_with_time_zone_null(
                        PropertyDefinitions::ArchiveTime,
                    ))
                    .to_owned(),
            )
            .await?;

        // One row per ticket and property: the canonical string, plus the typed copy searches compare.
        manager
            .create_table(
                Table::create()
                    .table(TicketPropertyValues::Table)
                    .col(big_integer(TicketPropertyValues::TicketId))
                    .col(text(TicketPropertyValues::Name))
                    .col(text(TicketPropertyValues::Value))
                    .col(double_null(TicketPropertyValues::NumberValue))
                    .col(timestamp_with_time_zone_null(
                        TicketPropertyValues::TimeValue,
                    ))
                    // STRING values as " word word ", lower-cased and split at every non-alphanumeric
                    // character, so CONTAINS_TOKEN is one LIKE that treats punctuation and any letter
                    // case the same on both databases.
                    .col(text_null(TicketPropertyValues::Tokens))
                    .primary_key(
                        Index::create()
                            .col(TicketPropertyValues::TicketId)
                            .col(TicketPropertyValues::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("ticket_property_values_ticket_fk")
                            .from(TicketPropertyValues::Table, TicketPropertyValues::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("ticket_property_values_definition_fk")
                            .from(TicketPropertyValues::Table, TicketPropertyValues::Name)
                            .to(PropertyDefinitions::Table, PropertyDefinitions::Name)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            (
                "ticket_property_values_name_value",
                TicketPropertyValues::Value,
            ),
            (
                "ticket_property_values_name_number",
                TicketPropertyValues::NumberValue,
            ),
            (
                "ticket_property_values_name_time",
                TicketPropertyValues::TimeValue,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(TicketPropertyValues::Table)
                        .col(TicketPropertyValues::Name)
                        .col(column)
                        .col(TicketPropertyValues::TicketId)
                        .to_owned(),
                )
                .await?;
        }

        // Until now properties were stored untyped on the ticket: each name found becomes a STRING
        // definition and every value moves to the typed table, so upgrading loses nothing.
        let (each, no_options) = match backend {
            DbBackend::Postgres => ("jsonb_each_text(t.properties)", "'[]'::jsonb"),
            _ => ("json_each(t.properties)", "'[]'"),
        };
        db.execute_unprepared(&format!(
            "INSERT INTO property_definitions (name, label, type, options, create_time, update_time) \
             SELECT DISTINCT kv.key, kv.key, 'STRING', {no_options}, {now}, {now} FROM tickets t, {each} kv",
            now = current_time(backend),
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO ticket_property_values (ticket_id, name, value) \
             SELECT t.id, kv.key, kv.value FROM tickets t, {each} kv"
        ))
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::Properties)
                    .to_owned(),
            )
            .await?;

        // Common searches (by stage, assignee, organization, requester) stay index scans on large tables.
        for (name, column) in [
            ("tickets_assignee_id", Tickets::AssigneeId),
            ("tickets_organization_id", Tickets::OrganizationId),
            ("tickets_requester_id", Tickets::RequesterId),
            ("tickets_stage_id", Tickets::StageId),
            ("tickets_archive_time", Tickets::ArchiveTime),
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
        create_full_text_index(manager).await?;

        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .col(big_pk_auto(Comments::Id))
                    .col(big_integer(Comments::TicketId))
                    .col(text(Comments::AuthorId).default(""))
                    .col(text(Comments::Body))
                    .col(
                        text(Comments::Visibility)
                            .check(Expr::col(Comments::Visibility).is_in(["PUBLIC", "INTERNAL"])),
                    )
                    .col(timestamp_with_time_zone(Comments::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("comments_ticket_fk")
                            .from(Comments::Table, Comments::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("comments_ticket_id")
                    .table(Comments::Table)
                    .col(Comments::TicketId)
                    .col(Comments::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AssociationTypes::Table)
                    .col(big_pk_auto(AssociationTypes::Id))
                    .col(
                        text(AssociationTypes::Category)
                            .check(Expr::col(AssociationTypes::Category).is_in(["SYSTEM", "USER"])),
                    )
                    .col(text(AssociationTypes::FromObjectType))
                    .col(text(AssociationTypes::ToObjectType))
                    .col(text(AssociationTypes::Label).default(""))
                    .col(text(AssociationTypes::InverseLabel).default(""))
                    .col(timestamp_with_time_zone(AssociationTypes::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("association_types_from_to_label")
                    .table(AssociationTypes::Table)
                    .col(AssociationTypes::FromObjectType)
                    .col(AssociationTypes::ToObjectType)
                    .col(AssociationTypes::Label)
                    .unique()
                    .to_owned(),
            )
            .await?;
        seed_association_types(manager).await?;

        // A link between two tickets is stored from both ends (`inverse` marks the mirrored row), so either
        // ticket lists it with one index scan.
        manager
            .create_table(
                Table::create()
                    .table(Associations::Table)
                    .col(big_pk_auto(Associations::Id))
                    .col(big_integer(Associations::TicketId))
                    .col(text(Associations::ToObjectType))
                    .col(text(Associations::ToObjectId))
                    .col(big_integer(Associations::AssociationTypeId))
                    .col(boolean(Associations::Inverse).default(false))
                    .col(timestamp_with_time_zone(Associations::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("associations_ticket_fk")
                            .from(Associations::Table, Associations::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("associations_type_fk")
                            .from(Associations::Table, Associations::AssociationTypeId)
                            .to(AssociationTypes::Table, AssociationTypes::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("associations_unique_link")
                    .table(Associations::Table)
                    .col(Associations::TicketId)
                    .col(Associations::ToObjectType)
                    .col(Associations::ToObjectId)
                    .col(Associations::AssociationTypeId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("associations_ticket_id")
                    .table(Associations::Table)
                    .col(Associations::TicketId)
                    .col(Associations::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TicketEvents::Table)
                    .col(big_pk_auto(TicketEvents::EventId))
                    .col(big_integer(TicketEvents::TicketId))
                    .col(text(TicketEvents::Kind))
                    .col(text(TicketEvents::ActorId).default(""))
                    .col(
                        ColumnDef::new(TicketEvents::Changes)
                            .json_binary()
                            .not_null(),
                    )
                    .col(ColumnDef::new(TicketEvents::Detail).json_binary().null())
                    .col(timestamp_with_time_zone(TicketEvents::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("ticket_events_ticket_fk")
                            .from(TicketEvents::Table, TicketEvents::TicketId)
                            .to(Tickets::Table, Tickets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ticket_events_ticket_id")
                    .table(TicketEvents::Table)
                    .col(TicketEvents::TicketId)
                    .col(TicketEvents::EventId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // Typed values cannot be folded back into the old untyped column without loss.
        Err(DbErr::Migration(
            "m20261122_000002_data_api cannot be reverted; restore a backup instead".to_owned(),
        ))
    }
}

fn current_time(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "now()",
        // The same text form sqlx writes for DateTime<Utc>, so times sort and compare as text.
        _ => "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
    }
}

/// Words of subject and content: a stored `simple` text-search vector with a GIN index on PostgreSQL, an
/// FTS5 table kept in step by triggers on SQLite.
async fn create_full_text_index(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let statements: &[&str] = match manager.get_database_backend() {
        // A stored vector, not an expression index: searches that walk tickets in id order (the usual plan
        // for common words with a LIMIT) then test a precomputed vector instead of re-parsing every text.
        DbBackend::Postgres => &[
            "ALTER TABLE tickets ADD COLUMN search_vector tsvector \
             GENERATED ALWAYS AS (to_tsvector('simple', \
             regexp_replace(subject || ' ' || content, '[^[:alnum:]]+', ' ', 'g'))) STORED",
            "CREATE INDEX tickets_search_vector ON tickets USING GIN (search_vector)",
            // With the default statistics a word the planner has not sampled is assumed to match 0.5 % of
            // tickets, so a rare word walks the whole primary key (54 ms on 100,000 tickets) instead of
            // asking the GIN index (2 ms). A larger sample keeps that guess small.
            "ALTER TABLE tickets ALTER COLUMN search_vector SET STATISTICS 1000",
        ],
        _ => &[
            "CREATE VIRTUAL TABLE tickets_fts USING fts5(subject, content, content='tickets', \
             content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
            "CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN \
             INSERT INTO tickets_fts(rowid, subject, content) VALUES (new.id, new.subject, new.content); END",
            "CREATE TRIGGER tickets_fts_delete AFTER DELETE ON tickets BEGIN \
             INSERT INTO tickets_fts(tickets_fts, rowid, subject, content) \
             VALUES ('delete', old.id, old.subject, old.content); END",
            "CREATE TRIGGER tickets_fts_update AFTER UPDATE OF subject, content ON tickets BEGIN \
             INSERT INTO tickets_fts(tickets_fts, rowid, subject, content) \
             VALUES ('delete', old.id, old.subject, old.content); \
             INSERT INTO tickets_fts(rowid, subject, content) VALUES (new.id, new.subject, new.content); END",
            "INSERT INTO tickets_fts(tickets_fts) VALUES ('rebuild')",
        ],
    };
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

async fn seed_association_types(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let mut insert = Query::insert();
    insert.into_table(AssociationTypes::Table).columns([
        AssociationTypes::Id,
        AssociationTypes::Category,
        AssociationTypes::FromObjectType,
        AssociationTypes::ToObjectType,
        AssociationTypes::CreateTime,
    ]);
    for (id, from, to) in SYSTEM_ASSOCIATION_TYPES {
        insert.values_panic([
            id.into(),
            "SYSTEM".into(),
            from.into(),
            to.into(),
            now.into(),
        ]);
    }
    manager.exec_stmt(insert.to_owned()).await?;
    let db = manager.get_connection();
    match manager.get_database_backend() {
        DbBackend::Postgres => {
            db.execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('association_types', 'id'), {})",
                FIRST_USER_ASSOCIATION_TYPE_ID - 1
            ))
            .await?;
        }
        _ => {
            // AUTOINCREMENT continues after the highest id ever used, which sqlite_sequence records.
            db.execute_unprepared(&format!(
                "UPDATE sqlite_sequence SET seq = {} WHERE name = 'association_types'",
                FIRST_USER_ASSOCIATION_TYPE_ID - 1
            ))
            .await?;
        }
    }
    Ok(())
}
