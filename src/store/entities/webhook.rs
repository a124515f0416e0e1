//! `webhooks` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    /// JSON array of event types (`ticket.created`, …, `*`).
    #[sea_orm(column_type = "JsonBinary")]
    pub event_types: Json,
    pub condition: String,
    pub description: String,
    pub enabled: bool,
    pub disabled_reason: String,
    /// In plain text: signing needs the key itself (see `domain::webhook::Webhook::secret`).
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expire_time: Option<DateTimeUtc>,
    /// Start of the current run of failed attempts; cleared by a success.
    pub failing_since: Option<DateTimeUtc>,
    pub version: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
