//! PostgreSQL: outbox positions are drawn from their sequences directly again, without the advisory lock that
//! `m20261122_000005` put in front of them.
//!
//! The lock made positions visible in the order they were drawn, at the price of one commit at a time for the
//! whole deployment. Readers now wait out the gaps of transactions still in flight instead (`src/store/outbox.rs`),
//! so writers commit in any order. The sequences created by `m20261122_000005` stay; only the defaults change.
//!
//! Rolling upgrade: a replica of the previous version reads positions assuming commit order, so while old and new
//! replicas run side by side an old replica's streams may pass over an event committed out of order (clients that
//! resume from a new replica see everything). Finish the rollout before relying on old replicas' streams.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, column, sequence)
const POSITIONS: [(&str, &str, &str); 2] = [
    ("ticket_events", "event_id", "ticket_events_position"),
    ("card_renders", "position", "card_renders_position"),
];

/// The lock key of `m20261122_000005`, for `down`.
const OUTBOX_LOCK_KEY: i64 = 0x6f75_7462;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, column, sequence) in POSITIONS {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT nextval('{sequence}')"
            ))
            .await?;
        }
        db.execute_unprepared("DROP FUNCTION ticketd_outbox_position(regclass)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE FUNCTION ticketd_outbox_position(sequence_name regclass) RETURNS bigint \
             LANGUAGE plpgsql VOLATILE AS $$ \
             BEGIN \
                 PERFORM pg_advisory_xact_lock({OUTBOX_LOCK_KEY}); \
                 RETURN nextval(sequence_name); \
             END $$"
        ))
        .await?;
        for (table, column, sequence) in POSITIONS {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ALTER COLUMN {column} \
                 SET DEFAULT ticketd_outbox_position('{sequence}')"
            ))
            .await?;
        }
        Ok(())
    }
}
