//! `ticket_property_values` table: one row per ticket and custom property.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_property_values")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Canonical text form.
    pub value: String,
    /// Set for NUMBER properties.
    pub number_value: Option<f64>,
    /// Set for DATE (midnight UTC) and DATETIME properties.
    pub time_value: Option<DateTimeUtc>,
    /// Set for STRING properties: " word word ", lower case, split at non-alphanumerics.
    pub tokens: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::ticket::Entity",
        from = "Column::TicketId",
        to = "super::ticket::Column::Id"
    )]
    Ticket,
}

impl Related<super::ticket::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Ticket.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
