//! `idempotency_keys` table: request ids of the release before ids were scoped per caller, left for its replicas
//! during a rolling upgrade (see migration `m20261129_000007`); only the purge still touches it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
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
