//! `association_types` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "association_types")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SYSTEM or USER.
    pub category: String,
    pub from_object_type: String,
    pub to_object_type: String,
    pub label: String,
    pub inverse_label: String,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
