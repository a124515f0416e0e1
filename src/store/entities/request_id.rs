//! `request_ids` table: the first response to each caller's `request_id`, for replaying retries.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "request_ids")]
pub struct Model {
    /// The principal that sent the request: ids are unique per caller, never shared between callers.
    #[sea_orm(primary_key, auto_increment = false)]
    pub caller: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// The RPC the id was first used with.
    pub operation: String,
    /// Hash of that request, so reusing an id for a different request is refused instead of replayed.
    pub fingerprint: String,
    /// The response, JSON of the domain value; NULL only inside the transaction that claims the id.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub response: Option<Json>,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
