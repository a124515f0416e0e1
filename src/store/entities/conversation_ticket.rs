//! `conversation_tickets` table: a chat conversation's tickets, the first and its follow-ups in order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: String,
    /// 0 for the ticket the first escalation made, then one more per follow-up.
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i32,
    pub ticket_id: i64,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
