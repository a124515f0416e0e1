//! `webhook_attempts` table: every try at a delivery.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub delivery_id: i64,
    pub attempt_time: DateTimeUtc,
    /// 0 when no HTTP answer came.
    pub http_status: i32,
    pub duration_micros: i64,
    /// The first KiB of the answer's body, or what went wrong.
    pub response: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
