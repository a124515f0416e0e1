//! `property_definitions` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "property_definitions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub label: String,
    pub description: String,
    pub group_name: String,
    /// STRING, NUMBER, BOOL, DATE, DATETIME or ENUMERATION.
    #[sea_orm(column_name = "type")]
    pub property_type: String,
    /// JSON array of options.
    #[sea_orm(column_type = "JsonBinary")]
    pub options: Json,
    pub required: bool,
    pub default_value: Option<String>,
    pub agent_only: bool,
    pub customer_visible: bool,
    pub customer_editable: bool,
    pub version: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub archive_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
