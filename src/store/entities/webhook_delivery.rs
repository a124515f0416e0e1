//! `webhook_deliveries` table: the durable queue of webhook deliveries.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub ticket_id: i64,
    /// `ticket.created`, …
    pub event_type: String,
    /// `PENDING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub next_attempt_time: DateTimeUtc,
    pub attempt_count: i32,
    /// W3C traceparent of the write that enqueued it; empty when it was not traced.
    pub trace_parent: String,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
