//! `associations` table: links from a ticket; a ticket-to-ticket link has a mirrored `inverse` row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "associations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub to_object_type: String,
    pub to_object_id: String,
    pub association_type_id: i64,
    /// The mirrored row of a ticket-to-ticket link, shown with the type's inverse label.
    pub inverse: bool,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
