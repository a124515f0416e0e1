//! PostgreSQL: `ticketd_definitions_for_write()` takes the shared definitions lock and returns every property
//! definition, in one round trip instead of two.
//!
//! Every ticket write validates against the definitions while holding the lock shared (a definition change
//! holds it exclusively; see `src/store/properties.rs`). Reading them in the same statement that takes the lock
//! would be wrong in plain SQL: a statement's snapshot is taken before it waits for the lock, so it could read
//! the definitions as they were before a change that committed while it waited. A VOLATILE PL/pgSQL function
//! takes a fresh snapshot for each statement inside it, so the `RETURN QUERY` after the lock sees that change.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The key `src/store/properties.rs` uses for the same lock.
const DEFINITIONS_LOCK_KEY: i64 = 0x7469_636b_7072;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE FUNCTION ticketd_definitions_for_write() RETURNS SETOF property_definitions \
                 LANGUAGE plpgsql VOLATILE AS $$ \
                 BEGIN \
                     PERFORM pg_advisory_xact_lock_shared({DEFINITIONS_LOCK_KEY}); \
                     RETURN QUERY SELECT * FROM property_definitions; \
                 END $$"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP FUNCTION ticketd_definitions_for_write()")
            .await?;
        Ok(())
    }
}
