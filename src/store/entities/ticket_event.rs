//! `ticket_events` table: the history of every ticket, and the outbox of the streams.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub event_id: i64,
    pub ticket_id: i64,
    pub kind: String,
    pub actor_id: String,
    /// JSON array of field changes.
    #[sea_orm(column_type = "JsonBinary")]
    pub changes: Json,
    /// JSON of the comment or association the event is about.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub detail: Option<Json>,
    pub create_time: DateTimeUtc,
    /// JSON of the ticket after the change.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub ticket: Option<Json>,
    /// `ALL` or `NONE`: whether the write that produced the event notifies (see `Notify`).
    pub notify: String,
    pub skip_automations: bool,
    /// For a rule's change: the event that set the rule off.
    pub cause_event_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
