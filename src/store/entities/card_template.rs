//! `card_templates` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "card_templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// The Kaizala view JSON exactly as sent.
    pub schema: String,
    pub app_model: String,
    /// JSON object: card property → ticket path.
    #[sea_orm(column_type = "JsonBinary")]
    pub bindings: Json,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
