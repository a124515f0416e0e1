//! `tickets` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subject: String,
    pub content: String,
    pub pipeline_id: i64,
    pub stage_id: i64,
    /// `LOW`, `MEDIUM`, `HIGH`, `URGENT` or none.
    pub priority: Option<String>,
    pub requester_id: String,
    pub assignee_id: String,
    pub organization_id: String,
    pub ticket_type: String,
    /// JSON array of strings, sorted.
    #[sea_orm(column_type = "JsonBinary")]
    pub tags: Json,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
    pub close_time: Option<DateTimeUtc>,
    pub archive_time: Option<DateTimeUtc>,
    pub version: i64,
    pub project_id: String,
    /// NULL for none, so the unique index lets any number of tickets have none.
    pub external_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::ticket_property_value::Entity")]
    PropertyValue,
}

impl Related<super::ticket_property_value::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PropertyValue.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
