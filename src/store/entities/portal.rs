//! `portals` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "portals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub requested_tickets: bool,
    pub followed_tickets: bool,
    pub organization_tickets: bool,
    pub followed_project_tickets: bool,
    /// JSON array of strings.
    #[sea_orm(column_type = "JsonBinary")]
    pub ticket_types: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub visible_properties: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub editable_properties: Json,
    pub time_logging: bool,
    pub version: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
