//! Custom property definitions, and the typed values tickets hold for them.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    Store, WriteTxn,
    entities::{property_definition, ticket, ticket_event, ticket_property_value},
    from_json, is_unique_violation, to_json,
};
use crate::domain::{
    Error, Origin, etag,
    event::FieldChange,
    field::TicketField,
    now,
    page::Page,
    property::{PropertyDefinition, PropertyOption, PropertyType, TypedValue},
};

const RESOURCE: &str = PropertyDefinition::RESOURCE;

/// Changes to a definition; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PropertyChanges {
    pub label: Option<String>,
    pub description: Option<String>,
    pub group_name: Option<String>,
    pub property_type: Option<PropertyType>,
    pub options: Option<Vec<PropertyOption>>,
    pub required: Option<bool>,
    pub default_value: Option<Option<String>>,
    pub agent_only: Option<bool>,
    pub customer_visible: Option<bool>,
    pub customer_editable: Option<bool>,
}

impl Store {
    /// Defines a property; its name must be new.
    pub async fn create_property(
        &self,
        mut definition: PropertyDefinition,
        origin: &Origin,
    ) -> Result<PropertyDefinition, Error> {
        definition.validate()?;
        self.write_config(origin.request.as_ref(), async |txn| {
            let now = now();
            definition.version = 1;
            definition.create_time = now;
            definition.update_time = now;
            definition.archive_time = None;
            let name = definition.name.clone();
            property_definition::Entity::insert(to_active(&definition)?)
                .exec_without_returning(&**txn)
                .await
                .map_err(|error| {
                    if is_unique_violation(&error) {
                        Error::AlreadyExists {
                            resource: RESOURCE,
                            field: "name".to_owned(),
                            value: name.clone(),
                        }
                    } else {
                        error.into()
                    }
                })?;
            Ok(definition.clone())
        })
        .await
    }

    /// Reads one definition, archived or not.
    pub async fn get_property(&self, name: &str) -> Result<PropertyDefinition, Error> {
        let row = property_definition::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found(RESOURCE, name))?;
        definition_to_domain(row)
    }

    /// One page of definitions by name, strictly after `after_name`.
    pub async fn list_properties(
        &self,
        page_size: u64,
        after_name: Option<String>,
        show_archived: bool,
    ) -> Result<Page<PropertyDefinition, String>, Error> {
        let mut select = property_definition::Entity::find();
        if !show_archived {
            select = select.filter(property_definition::Column::ArchiveTime.is_null());
        }
        if let Some(after) = after_name {
            select = select.filter(property_definition::Column::Name.gt(after));
        }
        let rows = select
            .order_by_asc(property_definition::Column::Name)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let definitions = rows
            .into_iter()
            .map(definition_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(definitions, page_size, |definition| {
            definition.name.clone()
        }))
    }

    /// Changes a definition without corrupting tickets: values that would no longer fit (a narrower type,
    /// a removed option) make it FAILED_PRECONDITION; values that merely change form are rewritten.
    pub async fn update_property(
        &self,
        name: &str,
        sent_etag: &str,
        changes: PropertyChanges,
        origin: &Origin,
    ) -> Result<PropertyDefinition, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let current = lock_definition(txn, name).await?;
            etag::check(RESOURCE, name, current.version, sent_etag)?;
            let mut updated = current.clone();
            apply(&mut updated, changes);
            updated.validate()?;
            if updated.property_type != current.property_type || updated.options != current.options
            {
                migrate_values(txn, &current, &updated, origin).await?;
            }
            updated.version += 1;
            updated.update_time = now();
            property_definition::Entity::update(to_active(&updated)?)
                .exec(&**txn)
                .await?;
            Ok(updated)
        })
        .await
    }

    /// Archives a definition: tickets keep their values; new writes of it are refused.
    pub async fn archive_property(
        &self,
        name: &str,
        sent_etag: &str,
        origin: &Origin,
    ) -> Result<PropertyDefinition, Error> {
        self.write_config(origin.request.as_ref(), async |txn| {
            let mut definition = lock_definition(txn, name).await?;
            etag::check(RESOURCE, name, definition.version, sent_etag)?;
            if definition.archived() {
                return Err(Error::precondition(
                    "PROPERTY_ARCHIVED",
                    format!("property {name:?} is already archived"),
                ));
            }
            definition.archive_time = Some(now());
            definition.version += 1;
            definition.update_time = now();
            property_definition::Entity::update(to_active(&definition)?)
                .exec(&**txn)
                .await?;
            Ok(definition)
        })
        .await
    }
}

fn apply(definition: &mut PropertyDefinition, changes: PropertyChanges) {
    fn set<T>(slot: &mut T, value: Option<T>) {
        if let Some(value) = value {
            *slot = value;
        }
    }
    set(&mut definition.label, changes.label);
    set(&mut definition.description, changes.description);
    set(&mut definition.group_name, changes.group_name);
    set(&mut definition.property_type, changes.property_type);
    set(&mut definition.options, changes.options);
    set(&mut definition.required, changes.required);
    set(&mut definition.default_value, changes.default_value);
    set(&mut definition.agent_only, changes.agent_only);
    set(&mut definition.customer_visible, changes.customer_visible);
    set(&mut definition.customer_editable, changes.customer_editable);
}

/// Re-reads every value of a property under its new definition. Refuses the change if any value no longer
/// fits; otherwise rewrites the values whose canonical form or typed copy changes, bumping those tickets'
/// etags and recording the change in their history.
async fn migrate_values(
    txn: &WriteTxn,
    current: &PropertyDefinition,
    updated: &PropertyDefinition,
    origin: &Origin,
) -> Result<(), Error> {
    let name = &current.name;
    let rows: Vec<(String, i64)> = ticket_property_value::Entity::find()
        .select_only()
        .column(ticket_property_value::Column::Value)
        .column_as(ticket_property_value::Column::TicketId.count(), "tickets")
        .filter(ticket_property_value::Column::Name.eq(name.as_str()))
        .group_by(ticket_property_value::Column::Value)
        .into_tuple()
        .all(&**txn)
        .await?;
    let mut misfits: Vec<&str> = Vec::new();
    let mut misfit_tickets = 0;
    let mut rewrites: Vec<(&str, TypedValue)> = Vec::new();
    for (value, tickets) in &rows {
        match updated.parse_value(value) {
            Ok(typed) => rewrites.push((value, typed)),
            Err(_) => {
                misfits.push(value);
                misfit_tickets += tickets;
            }
        }
    }
    if misfit_tickets > 0 {
        misfits.truncate(5);
        let reason = if updated.property_type != current.property_type {
            format!("are not valid {}", updated.property_type.as_str())
        } else {
            "use options that would be removed".to_owned()
        };
        return Err(Error::precondition(
            "PROPERTY_IN_USE",
            format!(
                "{misfit_tickets} ticket(s) have values of {name:?} that {reason} (e.g. {}); change those tickets first",
                misfits
                    .iter()
                    .map(|value| format!("{value:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let now = now();
    for (old_value, typed) in rewrites {
        let in_group = Condition::all()
            .add(ticket_property_value::Column::Name.eq(name.as_str()))
            .add(ticket_property_value::Column::Value.eq(old_value));
        if typed.text != old_value {
            let tickets = Query::select()
                .column(ticket_property_value::Column::TicketId)
                .from(ticket_property_value::Entity)
                .cond_where(in_group.clone())
                .to_owned();
            let change = FieldChange {
                field: TicketField::Property(name.to_owned()),
                old_value: old_value.to_owned(),
                new_value: typed.text.clone(),
            };
            let changes = to_json(&vec![change])?;
            // Written here in bulk rather than through the outbox queue, so settled here: no ticket is
            // created by a definition change.
            let side_effects = origin.side_effects.settle(false);
            ticket::Entity::update_many()
                .col_expr(
                    ticket::Column::Version,
                    Expr::col(ticket::Column::Version).add(1),
                )
                .col_expr(ticket::Column::UpdateTime, Expr::value(now))
                .filter(ticket::Column::Id.in_subquery(tickets.clone()))
                .exec(&**txn)
                .await?;
            let events = Query::insert()
                .into_table(ticket_event::Entity)
                .columns([
                    ticket_event::Column::TicketId,
                    ticket_event::Column::Kind,
                    ticket_event::Column::ActorId,
                    ticket_event::Column::Changes,
                    ticket_event::Column::CreateTime,
                    ticket_event::Column::Notify,
                    ticket_event::Column::SkipAutomations,
                ])
                .select_from(
                    Query::select()
                        .column(ticket_property_value::Column::TicketId)
                        .expr(Expr::value("UPDATED"))
                        .expr(Expr::value(origin.actor_id.clone()))
                        .expr(Expr::value(changes))
                        .expr(Expr::value(now))
                        .expr(Expr::value(side_effects.notify.as_str()))
                        .expr(Expr::value(side_effects.skip_automations))
                        .from(ticket_property_value::Entity)
                        .cond_where(in_group.clone())
                        .to_owned(),
                )
                .map_err(Error::internal)?
                .to_owned();
            txn.execute(&events).await?;
        }
        ticket_property_value::Entity::update_many()
            .col_expr(
                ticket_property_value::Column::Value,
                Expr::value(typed.text),
            )
            .col_expr(
                ticket_property_value::Column::NumberValue,
                Expr::value(typed.number),
            )
            .col_expr(
                ticket_property_value::Column::TimeValue,
                Expr::value(typed.time),
            )
            .col_expr(
                ticket_property_value::Column::Tokens,
                Expr::value(typed.tokens),
            )
            .filter(in_group)
            .exec(&**txn)
            .await?;
    }
    Ok(())
}

/// Reads a definition for change, after every ticket write in flight has committed (see
/// [`DEFINITIONS_LOCK_KEY`]).
async fn lock_definition(txn: &WriteTxn, name: &str) -> Result<PropertyDefinition, Error> {
    lock_definitions_exclusively(txn).await?;
    let row = property_definition::Entity::find_by_id(name.to_owned())
        .lock_exclusive()
        .one(&**txn)
        .await?
        .ok_or_else(|| Error::not_found(RESOURCE, name))?;
    definition_to_domain(row)
}

/// PostgreSQL advisory lock between ticket writes (shared) and definition changes (exclusive): a definition
/// cannot change while a ticket write validated against its old form is still uncommitted, so a type
/// change never misses a value that does not fit. SQLite's write gate already orders the two.
const DEFINITIONS_LOCK_KEY: i64 = 0x7469_636b_7072;

/// The definitions a ticket write validates against, held steady until the write commits (see
/// [`WriteTxn::definitions_for_write`]).
pub(super) async fn definitions_for_write(
    txn: &WriteTxn,
) -> Result<std::sync::Arc<BTreeMap<String, PropertyDefinition>>, Error> {
    txn.definitions_for_write().await
}

/// Takes the lock exclusively: ticket writes take it shared inside `ticketd_definitions_for_write()`.
async fn lock_definitions_exclusively(txn: &WriteTxn) -> Result<(), Error> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({DEFINITIONS_LOCK_KEY})"
        ))
        .await?;
    }
    Ok(())
}

/// Every definition, archived ones included, keyed by name: what ticket writes and searches check against.
pub(super) async fn load_definitions(
    db: &impl ConnectionTrait,
) -> Result<BTreeMap<String, PropertyDefinition>, Error> {
    by_name(property_definition::Entity::find().all(db).await?)
}

fn by_name(
    rows: Vec<property_definition::Model>,
) -> Result<BTreeMap<String, PropertyDefinition>, Error> {
    rows.into_iter()
        .map(|row| {
            definition_to_domain(row).map(|definition| (definition.name.clone(), definition))
        })
        .collect()
}

/// The properties of each of `ticket_ids`, in canonical text form.
pub(super) async fn load_values(
    db: &impl ConnectionTrait,
    ticket_ids: &[i64],
) -> Result<HashMap<i64, BTreeMap<String, String>>, Error> {
    let mut values: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    if ticket_ids.is_empty() {
        return Ok(values);
    }
    for row in ticket_property_value::Entity::find()
        .filter(ticket_property_value::Column::TicketId.is_in(ticket_ids.iter().copied()))
        .all(db)
        .await?
    {
        values
            .entry(row.ticket_id)
            .or_default()
            .insert(row.name, row.value);
    }
    Ok(values)
}

/// Writes a ticket's changed properties: `None` removes one.
pub(super) async fn write_values(
    txn: &WriteTxn,
    ticket_id: i64,
    changes: BTreeMap<String, Option<TypedValue>>,
) -> Result<(), Error> {
    if changes.is_empty() {
        return Ok(());
    }
    ticket_property_value::Entity::delete_many()
        .filter(ticket_property_value::Column::TicketId.eq(ticket_id))
        .filter(ticket_property_value::Column::Name.is_in(changes.keys().cloned()))
        .exec(&**txn)
        .await?;
    let rows: Vec<_> = changes
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .map(|(name, value)| ticket_property_value::ActiveModel {
            ticket_id: Set(ticket_id),
            name: Set(name),
            value: Set(value.text),
            number_value: Set(value.number),
            time_value: Set(value.time),
            tokens: Set(value.tokens),
        })
        .collect();
    if !rows.is_empty() {
        ticket_property_value::Entity::insert_many(rows)
            .exec_without_returning(&**txn)
            .await?;
    }
    Ok(())
}

fn to_active(definition: &PropertyDefinition) -> Result<property_definition::ActiveModel, Error> {
    Ok(property_definition::ActiveModel {
        name: Set(definition.name.clone()),
        label: Set(definition.label.clone()),
        description: Set(definition.description.clone()),
        group_name: Set(definition.group_name.clone()),
        property_type: Set(definition.property_type.as_str().to_owned()),
        options: Set(to_json(&definition.options)?),
        required: Set(definition.required),
        default_value: Set(definition.default_value.clone()),
        agent_only: Set(definition.agent_only),
        customer_visible: Set(definition.customer_visible),
        customer_editable: Set(definition.customer_editable),
        version: Set(definition.version),
        create_time: Set(definition.create_time),
        update_time: Set(definition.update_time),
        archive_time: Set(definition.archive_time),
    })
}

fn definition_to_domain(row: property_definition::Model) -> Result<PropertyDefinition, Error> {
    let property_type = PropertyType::from_stored(&row.property_type).ok_or_else(|| {
        Error::internal(format!(
            "property {} has unknown type {:?}",
            row.name, row.property_type
        ))
    })?;
    Ok(PropertyDefinition {
        property_type,
        options: from_json(row.options)?,
        name: row.name,
        label: row.label,
        description: row.description,
        group_name: row.group_name,
        required: row.required,
        default_value: row.default_value,
        agent_only: row.agent_only,
        customer_visible: row.customer_visible,
        customer_editable: row.customer_editable,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
        archive_time: row.archive_time,
    })
}
