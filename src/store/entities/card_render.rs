//! `card_renders` table: each card version, rendered, in commit order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "card_renders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub position: i64,
    pub card_id: i64,
    pub version: i64,
    pub ticket_id: i64,
    pub group_id: String,
    /// The resolved view JSON.
    pub view: String,
    /// JSON array of the text nodes' strings.
    #[sea_orm(column_type = "JsonBinary")]
    pub texts: Json,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
