//! `cards` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cards")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub template_id: i64,
    pub ticket_id: i64,
    pub group_id: String,
    /// JSON array of subscriber ids.
    #[sea_orm(column_type = "JsonBinary")]
    pub subscribers: Json,
    pub send_to_all_subscribers: bool,
    /// JSON object of card properties.
    #[sea_orm(column_type = "JsonBinary")]
    pub properties: Json,
    pub version: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
