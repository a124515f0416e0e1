//! PostgreSQL: a configuration generation, so that each replica can cache pipelines, stages, property
//! definitions, enabled rules and enabled webhooks (`src/store/config.rs`) and still never write against
//! configuration older than what had committed when the write began.
//!
//! - `ticketd_config_generation` holds one row. Statement-level triggers on every table the cache copies set it
//!   to a fresh value of a sequence in the same transaction as the change, so no code path (nor a hand-written
//!   `UPDATE` in psql) can change configuration without moving it. Values come from a sequence, never reused
//!   even by a rolled-back transaction, so a generation names one committed state; the row lock the triggers
//!   take makes configuration changes commit in generation order.
//! - The triggers also `NOTIFY ticketd_config`, delivered at commit: replicas drop their cache for plain reads.
//! - `ticketd_config_for_write()` takes the shared definitions lock (as `ticketd_definitions_for_write()` does,
//!   migration `m20261122_000006`) and then returns the generation, in one round trip: a ticket write compares
//!   it with its cache instead of reading every definition. PL/pgSQL's fresh snapshot per statement makes the
//!   generation read after the lock see a definition change that committed while the write waited for it.
//! - Webhooks trigger only on the columns the cache reads: the delivery workers update `failing_since` and
//!   `update_time` on every failing run, which must not empty every replica's cache.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The key `src/store/properties.rs` uses for the definitions lock.
const DEFINITIONS_LOCK_KEY: i64 = 0x7469_636b_7072;

/// Tables whose every change moves the generation.
const WHOLE_TABLES: [&str; 4] = ["pipelines", "stages", "property_definitions", "rules"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE SEQUENCE ticketd_config_generation_seq; \
             CREATE TABLE ticketd_config_generation ( \
                 singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton), \
                 generation BIGINT NOT NULL); \
             INSERT INTO ticketd_config_generation (generation) \
                 VALUES (nextval('ticketd_config_generation_seq')); \
             CREATE FUNCTION ticketd_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
                 UPDATE ticketd_config_generation SET generation = nextval('ticketd_config_generation_seq'); \
                 PERFORM pg_notify('ticketd_config', ''); \
                 RETURN NULL; \
             END $$;",
        )
        .await?;
        for table in WHOLE_TABLES {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_config_changed \
                 AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION ticketd_config_changed()"
            ))
            .await?;
        }
        db.execute_unprepared(&format!(
            "CREATE TRIGGER webhooks_config_changed \
             AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF enabled, event_types, condition ON webhooks \
             FOR EACH STATEMENT EXECUTE FUNCTION ticketd_config_changed(); \
             CREATE FUNCTION ticketd_config_for_write() RETURNS BIGINT \
             LANGUAGE plpgsql VOLATILE AS $$ \
             BEGIN \
                 PERFORM pg_advisory_xact_lock_shared({DEFINITIONS_LOCK_KEY}); \
                 RETURN (SELECT generation FROM ticketd_config_generation); \
             END $$"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP FUNCTION ticketd_config_for_write()")
            .await?;
        for table in WHOLE_TABLES.into_iter().chain(["webhooks"]) {
            db.execute_unprepared(&format!("DROP TRIGGER {table}_config_changed ON {table}"))
                .await?;
        }
        db.execute_unprepared(
            "DROP FUNCTION ticketd_config_changed(); \
             DROP TABLE ticketd_config_generation; \
             DROP SEQUENCE ticketd_config_generation_seq",
        )
        .await?;
        Ok(())
    }
}
