//! `conversation_messages` table: which transcript messages of a conversation were already added.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: String,
    /// The message's id in the chat tool, or a digest of its time, author and text (see
    /// `domain::escalation::TranscriptMessage::key`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_key: String,
    /// The ticket whose transcript note carries it.
    pub ticket_id: i64,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
