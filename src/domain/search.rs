//! Search filters (HubSpot's filter groups): parsed and type-checked here against the core fields and the
//! property definitions, then turned into SQL by the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    Error, Result,
    field::TicketField,
    property::{PropertyDefinition, PropertyType, parse_typed},
    ticket::Priority,
};

/// Most filter groups in one search.
pub const MAX_GROUPS: usize = 5;
/// Most filters across all groups.
pub const MAX_FILTERS: usize = 25;
/// Most values of an IN / NOT_IN filter.
pub const MAX_VALUES: usize = 100;

/// How a filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

/// A filter as the client sent it.
#[derive(Debug, Clone)]
pub struct RawFilter {
    pub property: String,
    pub operator: Option<Operator>,
    pub value: String,
    pub values: Vec<String>,
    pub high_value: String,
}

/// The kind of values a core field holds in filters; `None`: filters cannot address it.
fn filter_kind(field: &TicketField) -> Option<ValueKind> {
    Some(match field {
        TicketField::Id | TicketField::PipelineId | TicketField::StageId => ValueKind::Integer,
        TicketField::Priority => ValueKind::Priority,
        TicketField::RequesterId
        | TicketField::AssigneeId
        | TicketField::OrganizationId
        | TicketField::TicketType
        | TicketField::ProjectId
        | TicketField::ExternalId => ValueKind::Text,
        TicketField::Tags => ValueKind::Tag,
        TicketField::CreateTime | TicketField::UpdateTime | TicketField::CloseTime => {
            ValueKind::Time
        }
        // Subject and content are searched by words (`query`, CONTAINS_TOKEN is for properties).
        TicketField::Subject
        | TicketField::Content
        | TicketField::Properties
        | TicketField::ArchiveTime
        | TicketField::Archived
        | TicketField::Etag => return None,
        // Custom properties are typed by their definitions.
        TicketField::Property(_) => return None,
    })
}

/// Whether filters can address this core field.
pub fn filterable(field: &TicketField) -> bool {
    filter_kind(field).is_some()
}

/// The field a filter's `property` names: a core field filters can address, else a custom property by its
/// bare name (filters say `region`, not `properties.region`).
pub fn filter_field(name: &str) -> TicketField {
    core_filter_field(name).map_or_else(
        || TicketField::Property(name.to_owned()),
        |(field, _)| field,
    )
}

fn core_filter_field(name: &str) -> Option<(TicketField, ValueKind)> {
    let field = TicketField::parse(name)?;
    let kind = filter_kind(&field)?;
    Some((field, kind))
}

/// What a filter addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A core field, one [`filterable`] says filters can address.
    Core(TicketField),
    /// A custom property, by name.
    Property(String),
}

/// The type of the values a target holds, which decides the operators it allows and how values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Integer,
    Number,
    Time,
    Priority,
    Text,
    /// Bool and enumeration values: compared as their canonical text, never ordered.
    Token,
    Tag,
}

/// A filter value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Number(f64),
    Time(DateTime<Utc>),
    Text(String),
}

/// A type-checked comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Eq(Value),
    Lt(Value),
    Lte(Value),
    Gt(Value),
    Gte(Value),
    Between(Value, Value),
    In(Vec<Value>),
    HasValue,
    /// The text contains every one of these lower-case words.
    ContainsToken(Vec<String>),
}

/// One filter, checked: `negated` turns NEQ, NOT_IN, NOT_HAS_PROPERTY and NOT_CONTAINS_TOKEN into the
/// negation of their positive forms, which also matches tickets without a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub target: Target,
    pub comparison: Comparison,
    pub negated: bool,
}

/// Checks every filter; the result is an OR of groups, each an AND of predicates. Errors name
/// `filter_groups[g].filters[f].<field>`.
pub fn compile(
    groups: Vec<Vec<RawFilter>>,
    definitions: &BTreeMap<String, PropertyDefinition>,
) -> Result<Vec<Vec<Predicate>>> {
    if groups.len() > MAX_GROUPS {
        return Err(Error::invalid(
            "filter_groups",
            format!("at most {MAX_GROUPS} groups, got {}", groups.len()),
        ));
    }
    let filter_count: usize = groups.iter().map(Vec::len).sum();
    if filter_count > MAX_FILTERS {
        return Err(Error::invalid(
            "filter_groups",
            format!("at most {MAX_FILTERS} filters in all, got {filter_count}"),
        ));
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(group_index, filters)| {
            if filters.is_empty() {
                return Err(Error::invalid(
                    format!("filter_groups[{group_index}].filters"),
                    "a group needs at least one filter",
                ));
            }
            filters
                .into_iter()
                .enumerate()
                .map(|(filter_index, filter)| {
                    compile_filter(filter, definitions).map_err(|error| {
                        error.within(&format!(
                            "filter_groups[{group_index}].filters[{filter_index}]"
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

fn compile_filter(
    filter: RawFilter,
    definitions: &BTreeMap<String, PropertyDefinition>,
) -> Result<Predicate> {
    let (target, kind, definition) = match core_filter_field(&filter.property) {
        Some((field, kind)) => (Target::Core(field), kind, None),
        None => {
            let definition = definitions.get(&filter.property).ok_or_else(|| {
                Error::invalid(
                    "property",
                    format!(
                        "{:?} is neither a ticket field nor a custom property",
                        filter.property
                    ),
                )
            })?;
            let kind = match definition.property_type {
                PropertyType::Number => ValueKind::Number,
                PropertyType::Date | PropertyType::DateTime => ValueKind::Time,
                PropertyType::String => ValueKind::Text,
                PropertyType::Bool | PropertyType::Enumeration => ValueKind::Token,
            };
            (
                Target::Property(definition.name.clone()),
                kind,
                Some(definition),
            )
        }
    };
    let operator = filter
        .operator
        .ok_or_else(|| Error::invalid("operator", "is required"))?;
    let ordered = matches!(
        kind,
        ValueKind::Integer | ValueKind::Number | ValueKind::Time
    );
    let refuse = || {
        Error::invalid(
            "operator",
            format!("{operator:?} does not apply to {:?}", filter.property),
        )
    };
    let value = |field: &str, raw: &str| parse_value(kind, definition, field, raw);
    let (comparison, negated) = match operator {
        Operator::Eq | Operator::Neq => (
            Comparison::Eq(value("value", &filter.value)?),
            operator == Operator::Neq,
        ),
        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte if !ordered => {
            return Err(refuse());
        }
        Operator::Lt => (Comparison::Lt(value("value", &filter.value)?), false),
        Operator::Lte => (Comparison::Lte(value("value", &filter.value)?), false),
        Operator::Gt => (Comparison::Gt(value("value", &filter.value)?), false),
        Operator::Gte => (Comparison::Gte(value("value", &filter.value)?), false),
        Operator::Between if !ordered => return Err(refuse()),
        Operator::Between => {
            if filter.high_value.is_empty() {
                return Err(Error::invalid("high_value", "BETWEEN needs a high_value"));
            }
            (
                Comparison::Between(
                    value("value", &filter.value)?,
                    value("high_value", &filter.high_value)?,
                ),
                false,
            )
        }
        Operator::In | Operator::NotIn => {
            if filter.values.is_empty() || filter.values.len() > MAX_VALUES {
                return Err(Error::invalid(
                    "values",
                    format!("{operator:?} needs 1 to {MAX_VALUES} values"),
                ));
            }
            let values = filter
                .values
                .iter()
                .enumerate()
                .map(|(index, raw)| value(&format!("values[{index}]"), raw))
                .collect::<Result<Vec<_>>>()?;
            (Comparison::In(values), operator == Operator::NotIn)
        }
        Operator::HasProperty | Operator::NotHasProperty => {
            (Comparison::HasValue, operator == Operator::NotHasProperty)
        }
        Operator::ContainsToken | Operator::NotContainsToken => {
            let negated = operator == Operator::NotContainsToken;
            match kind {
                // A tag is a token of its own: containing it means having it.
                ValueKind::Tag => (Comparison::Eq(value("value", &filter.value)?), negated),
                ValueKind::Text => {
                    let words = query_words(&filter.value);
                    if words.is_empty() {
                        return Err(Error::invalid("value", "CONTAINS_TOKEN needs a word"));
                    }
                    (Comparison::ContainsToken(words), negated)
                }
                _ => return Err(refuse()),
            }
        }
    };
    Ok(Predicate {
        target,
        comparison,
        negated,
    })
}

fn parse_value(
    kind: ValueKind,
    definition: Option<&PropertyDefinition>,
    field: &str,
    raw: &str,
) -> Result<Value> {
    let invalid = |reason: String| Error::invalid(field, reason);
    let trimmed = raw.trim();
    match (kind, definition) {
        (_, Some(definition)) => {
            let typed =
                parse_typed(definition.property_type, &definition.options, raw).map_err(invalid)?;
            Ok(match (typed.number, typed.time) {
                (Some(number), _) => Value::Number(number),
                (_, Some(time)) => Value::Time(time),
                _ => Value::Text(typed.text),
            })
        }
        (ValueKind::Integer, None) => trimmed
            .parse()
            .map(Value::Integer)
            .map_err(|_| invalid(format!("{raw:?} is not an integer"))),
        (ValueKind::Time, None) => DateTime::parse_from_rfc3339(trimmed)
            .map(|time| Value::Time(time.with_timezone(&Utc)))
            .map_err(|_| invalid(format!("{raw:?} is not an RFC 3339 time"))),
        (ValueKind::Priority, None) => Priority::from_stored(&trimmed.to_ascii_uppercase())
            .map(|priority| Value::Text(priority.as_str().to_owned()))
            .ok_or_else(|| invalid(format!("{raw:?} is not LOW, MEDIUM, HIGH or URGENT"))),
        (ValueKind::Tag, None) if trimmed.is_empty() => {
            Err(invalid("a tag is required".to_owned()))
        }
        (_, None) => Ok(Value::Text(trimmed.to_owned())),
    }
}

/// Splits text into lower-case words (runs of letters and digits): the unit both databases index for
/// `query`, and the unit of CONTAINS_TOKEN.
pub fn query_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}
