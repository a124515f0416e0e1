//! Association types and the links from tickets to other objects and to other tickets.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
    sea_query::{Expr, ExprTrait},
};

use super::{
    Store, WriteTxn,
    entities::{association, association_type},
    history::record_event,
    is_unique_violation,
};
use crate::domain::{
    Error, Origin,
    association::{
        Association, AssociationSpec, AssociationType, Category, ObjectRef, TICKET_OBJECT_TYPE,
    },
    event::{EventDetail, EventKind, NewEvent},
    now,
    page::{Cursor, Page},
};

const LINK: &str = "association";
const TYPE: &str = "association_type";

impl Store {
    /// Association types between two object types; `None` matches any.
    pub async fn list_association_types(
        &self,
        from_object_type: Option<&str>,
        to_object_type: Option<&str>,
    ) -> Result<Vec<AssociationType>, Error> {
        let mut select = association_type::Entity::find();
        if let Some(from) = from_object_type {
            select = select.filter(association_type::Column::FromObjectType.eq(from));
        }
        if let Some(to) = to_object_type {
            select = select.filter(association_type::Column::ToObjectType.eq(to));
        }
        select
            .order_by_asc(association_type::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(type_to_domain)
            .collect()
    }

    /// Defines a labelled user type; one end must be a ticket.
    pub async fn create_association_type(
        &self,
        new: AssociationType,
        origin: &Origin,
    ) -> Result<AssociationType, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = association_type::Entity::insert(association_type::ActiveModel {
                id: NotSet,
                category: Set(Category::User.as_str().to_owned()),
                from_object_type: Set(new.from_object_type.clone()),
                to_object_type: Set(new.to_object_type.clone()),
                label: Set(new.label.clone()),
                inverse_label: Set(new.inverse_label.clone()),
                create_time: Set(now()),
            })
            .exec_with_returning(&**txn)
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    Error::AlreadyExists {
                        resource: TYPE,
                        field: "label".to_owned(),
                        value: new.label.clone(),
                    }
                } else {
                    error.into()
                }
            })?;
            type_to_domain(row)
        })
        .await
    }

    /// Links a ticket to an object; linking what is already linked returns the existing link.
    pub async fn create_association(
        &self,
        ticket_id: i64,
        spec: AssociationSpec,
        origin: &Origin,
    ) -> Result<Association, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            require_ticket(txn, ticket_id).await?;
            link(txn, ticket_id, spec, origin)
                .await
                .map_err(|error| error.within("association"))
        })
        .await
    }

    /// Makes every link or none; an error names the failing item.
    pub async fn batch_create_associations(
        &self,
        links: Vec<(i64, AssociationSpec)>,
        origin: &Origin,
    ) -> Result<Vec<Association>, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let mut created = Vec::with_capacity(links.len());
            for (index, (ticket_id, spec)) in links.into_iter().enumerate() {
                let made = async {
                    require_ticket(txn, ticket_id).await?;
                    link(txn, ticket_id, spec, origin)
                        .await
                        .map_err(|error| error.within("association"))
                }
                .await
                .map_err(|error| error.in_batch("requests", index))?;
                created.push(made);
            }
            Ok(created)
        })
        .await
    }

    /// Removes a link (from both ends between tickets); NOT_FOUND when there is none.
    pub async fn delete_association(
        &self,
        ticket_id: i64,
        spec: AssociationSpec,
        origin: &Origin,
    ) -> Result<(), Error> {
        self.write(origin.request.as_ref(), async |txn| {
            require_ticket(txn, ticket_id).await?;
            let kind = resolve_type(txn, &spec)
                .await
                .map_err(|error| error.within("association"))?;
            let row = association::Entity::find()
                .filter(link_key(ticket_id, &spec.to, kind.id))
                .one(&**txn)
                .await?
                .ok_or_else(|| {
                    Error::not_found(
                        LINK,
                        format!(
                            "ticket {ticket_id} → {} {} (type {})",
                            spec.to.object_type, spec.to.object_id, kind.id
                        ),
                    )
                })?;
            let removed = link_to_domain(&row, &kind);
            association::Entity::delete_by_id(row.id)
                .exec(&**txn)
                .await?;
            record_link_event(txn, origin, EventKind::AssociationRemoved, removed).await?;
            if let Some(other) = spec.to.ticket_id() {
                let mirror_ref = ObjectRef {
                    object_type: TICKET_OBJECT_TYPE.to_owned(),
                    object_id: ticket_id.to_string(),
                };
                if let Some(mirror) = association::Entity::find()
                    .filter(link_key(other, &mirror_ref, kind.id))
                    .one(&**txn)
                    .await?
                {
                    let removed = link_to_domain(&mirror, &kind);
                    association::Entity::delete_by_id(mirror.id)
                        .exec(&**txn)
                        .await?;
                    record_link_event(txn, origin, EventKind::AssociationRemoved, removed).await?;
                }
            }
            Ok(())
        })
        .await
    }

    /// A ticket's links, oldest first; links to archived tickets are hidden until those are restored.
    pub async fn list_associations(
        &self,
        ticket_id: i64,
        to_object_type: Option<&str>,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<Association>, Error> {
        self.require_ticket(ticket_id).await?;
        let archived_tickets = Expr::cust(
            "\"associations\".\"to_object_type\" = 'ticket' AND \"associations\".\"to_object_id\" IN \
             (SELECT CAST(\"id\" AS TEXT) FROM \"tickets\" WHERE \"archive_time\" IS NOT NULL)",
        );
        let mut select = association::Entity::find()
            .filter(association::Column::TicketId.eq(ticket_id))
            .filter(archived_tickets.not());
        if let Some(object_type) = to_object_type {
            select = select.filter(association::Column::ToObjectType.eq(object_type));
        }
        if let Some(cursor) = after {
            select = select.filter(association::Column::Id.gt(cursor.id));
        }
        let rows = select
            .order_by_asc(association::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let type_ids: Vec<i64> = rows.iter().map(|row| row.association_type_id).collect();
        let types: std::collections::HashMap<i64, AssociationType> =
            association_type::Entity::find()
                .filter(association_type::Column::Id.is_in(type_ids))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|row| type_to_domain(row).map(|kind| (kind.id, kind)))
                .collect::<Result<_, _>>()?;
        let mut links = Vec::with_capacity(rows.len());
        let mut cursors = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind = types
                .get(&row.association_type_id)
                .ok_or_else(|| Error::internal(format!("association {} has no type", row.id)))?;
            links.push(link_to_domain(row, kind));
            cursors.push(row.id);
        }
        let page = Page::from_overfetch(
            links.into_iter().zip(cursors).collect::<Vec<_>>(),
            page_size,
            |(_, id)| Cursor { key: *id, id: *id },
        );
        Ok(Page {
            items: page.items.into_iter().map(|(link, _)| link).collect(),
            next: page.next,
        })
    }
}

/// Makes one link from `ticket_id` inside `txn`, idempotently; between tickets the mirrored row too.
/// Errors name fields relative to the link (`to.object_id`, `association_type_id`).
pub(super) async fn link(
    txn: &WriteTxn,
    ticket_id: i64,
    spec: AssociationSpec,
    origin: &Origin,
) -> Result<Association, Error> {
    let kind = resolve_type(txn, &spec).await?;
    if let Some(other) = spec.to.ticket_id() {
        if other == ticket_id {
            return Err(Error::invalid(
                "to.object_id",
                "a ticket cannot be linked to itself",
            ));
        }
        if !super::tickets::ticket_exists(&**txn, other).await? {
            return Err(Error::invalid(
                "to.object_id",
                format!("ticket {other} does not exist"),
            ));
        }
    }
    let (row, created) = insert_link(txn, ticket_id, &spec.to, &kind, false).await?;
    let made = link_to_domain(&row, &kind);
    if created {
        record_link_event(txn, origin, EventKind::AssociationAdded, made.clone()).await?;
    }
    if let Some(other) = spec.to.ticket_id() {
        let back = ObjectRef {
            object_type: TICKET_OBJECT_TYPE.to_owned(),
            object_id: ticket_id.to_string(),
        };
        let (mirror, created) = insert_link(txn, other, &back, &kind, true).await?;
        if created {
            record_link_event(
                txn,
                origin,
                EventKind::AssociationAdded,
                link_to_domain(&mirror, &kind),
            )
            .await?;
        }
    }
    Ok(made)
}

/// Inserts a link row unless it exists; returns the row and whether it is new.
async fn insert_link(
    txn: &WriteTxn,
    ticket_id: i64,
    to: &ObjectRef,
    kind: &AssociationType,
    inverse: bool,
) -> Result<(association::Model, bool), Error> {
    // ON CONFLICT DO NOTHING: a concurrent request making the same link waits for this one's commit and then
    // finds the row, instead of failing on the unique index.
    let inserted = association::Entity::insert(association::ActiveModel {
        id: NotSet,
        ticket_id: Set(ticket_id),
        to_object_type: Set(to.object_type.clone()),
        to_object_id: Set(to.object_id.clone()),
        association_type_id: Set(kind.id),
        inverse: Set(inverse),
        create_time: Set(now()),
    })
    .on_conflict_do_nothing_on([
        association::Column::TicketId,
        association::Column::ToObjectType,
        association::Column::ToObjectId,
        association::Column::AssociationTypeId,
    ])
    .exec_without_returning(&**txn)
    .await?;
    let created = matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0);
    let row = association::Entity::find()
        .filter(link_key(ticket_id, to, kind.id))
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::internal("association vanished after insert"))?;
    Ok((row, created))
}

async fn record_link_event(
    txn: &WriteTxn,
    origin: &Origin,
    kind: EventKind,
    link: Association,
) -> Result<(), Error> {
    record_event(
        txn,
        origin,
        NewEvent::plain(
            link.ticket_id,
            kind,
            Vec::new(),
            Some(EventDetail::Association(link)),
        ),
    )
    .await
}

/// The type a link uses: the one named, which must go from tickets to the target's object type, or the
/// unlabelled system type between them.
async fn resolve_type(txn: &WriteTxn, spec: &AssociationSpec) -> Result<AssociationType, Error> {
    let to_type = spec.to.object_type.as_str();
    let row = match spec.association_type_id {
        Some(id) => association_type::Entity::find_by_id(id)
            .one(&**txn)
            .await?
            .ok_or_else(|| {
                Error::invalid("association_type_id", format!("association type {id} does not exist"))
            })?,
        None => association_type::Entity::find()
            .filter(association_type::Column::FromObjectType.eq(TICKET_OBJECT_TYPE))
            .filter(association_type::Column::ToObjectType.eq(to_type))
            .filter(association_type::Column::Category.eq(Category::System.as_str()))
            .filter(association_type::Column::Label.eq(""))
            .one(&**txn)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "association_type_id",
                    format!(
                        "there is no default association type from ticket to {to_type:?}; name one made with CreateAssociationType"
                    ),
                )
            })?,
    };
    let kind = type_to_domain(row)?;
    if kind.from_object_type != TICKET_OBJECT_TYPE || kind.to_object_type != to_type {
        return Err(Error::invalid(
            "association_type_id",
            format!(
                "association type {} links {} to {}, not ticket to {to_type}",
                kind.id, kind.from_object_type, kind.to_object_type
            ),
        ));
    }
    Ok(kind)
}

async fn require_ticket(txn: &WriteTxn, ticket_id: i64) -> Result<(), Error> {
    super::tickets::require_ticket(&**txn, ticket_id).await
}

fn link_key(ticket_id: i64, to: &ObjectRef, type_id: i64) -> Condition {
    Condition::all()
        .add(association::Column::TicketId.eq(ticket_id))
        .add(association::Column::ToObjectType.eq(to.object_type.as_str()))
        .add(association::Column::ToObjectId.eq(to.object_id.as_str()))
        .add(association::Column::AssociationTypeId.eq(type_id))
}

fn link_to_domain(row: &association::Model, kind: &AssociationType) -> Association {
    Association {
        ticket_id: row.ticket_id,
        to: ObjectRef {
            object_type: row.to_object_type.clone(),
            object_id: row.to_object_id.clone(),
        },
        association_type_id: row.association_type_id,
        label: if row.inverse {
            kind.inverse_label.clone()
        } else {
            kind.label.clone()
        },
        create_time: row.create_time,
    }
}

fn type_to_domain(row: association_type::Model) -> Result<AssociationType, Error> {
    let category = Category::from_stored(&row.category).ok_or_else(|| {
        Error::internal(format!(
            "association type {} has unknown category {:?}",
            row.id, row.category
        ))
    })?;
    Ok(AssociationType {
        id: row.id,
        category,
        from_object_type: row.from_object_type,
        to_object_type: row.to_object_type,
        label: row.label,
        inverse_label: row.inverse_label,
    })
}
