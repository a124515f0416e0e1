//! SearchTickets filters: any filter groups, over the core fields and one custom property of each type, are
//! either refused with an error or compiled into one predicate per filter.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use ticketd::{
    domain::{
        property::{PropertyDefinition, PropertyOption, PropertyType},
        search::{Comparison, Operator, RawFilter, Value},
    },
    fuzzing,
};

/// Names a filter may give: the core fields (filterable or not), the properties defined below, and near misses.
const NAMES: [&str; 28] = [
    "id",
    "pipeline_id",
    "stage_id",
    "priority",
    "requester_id",
    "assignee_id",
    "organization_id",
    "ticket_type",
    "project_id",
    "tags",
    "create_time",
    "update_time",
    "close_time",
    "subject",
    "content",
    "properties",
    "archived",
    "archive_time",
    "etag",
    "region",
    "score",
    "vip",
    "due",
    "seen",
    "tier",
    "gone",
    "properties.region",
    "ID",
];

const OPERATORS: [Operator; 13] = [
    Operator::Eq,
    Operator::Neq,
    Operator::Lt,
    Operator::Lte,
    Operator::Gt,
    Operator::Gte,
    Operator::Between,
    Operator::In,
    Operator::NotIn,
    Operator::HasProperty,
    Operator::NotHasProperty,
    Operator::ContainsToken,
    Operator::NotContainsToken,
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Filter {
    property: Name,
    /// Out of range: the client sent no (or an unknown) operator.
    operator: u8,
    value: String,
    values: Vec<String>,
    high_value: String,
}

#[derive(Arbitrary, Debug)]
struct Input {
    groups: Vec<Vec<Filter>>,
    query: String,
}

static DEFINITIONS: LazyLock<BTreeMap<String, PropertyDefinition>> = LazyLock::new(|| {
    let time = DateTime::<Utc>::UNIX_EPOCH;
    let define = |name: &str, property_type, options: &[&str], archived: bool| PropertyDefinition {
        name: name.to_owned(),
        label: name.to_owned(),
        description: String::new(),
        group_name: String::new(),
        property_type,
        options: options
            .iter()
            .zip(0..)
            .map(|(value, display_order)| PropertyOption {
                label: value.to_uppercase(),
                value: (*value).to_owned(),
                display_order,
                hidden: false,
            })
            .collect(),
        required: false,
        default_value: None,
        agent_only: false,
        customer_visible: true,
        customer_editable: true,
        version: 1,
        create_time: time,
        update_time: time,
        archive_time: archived.then_some(time),
    };
    [
        define("region", PropertyType::String, &[], false),
        define("score", PropertyType::Number, &[], false),
        define("vip", PropertyType::Bool, &[], false),
        define("due", PropertyType::Date, &[], false),
        define("seen", PropertyType::DateTime, &[], false),
        define(
            "tier",
            PropertyType::Enumeration,
            &["gold", "silver", ""],
            false,
        ),
        define("gone", PropertyType::String, &[], true),
    ]
    .into_iter()
    .map(|definition| (definition.name.clone(), definition))
    .collect()
});

fn check_words(words: &[String]) {
    // Stored as " word word ", matched as " word ": a word with a space (or none at all) would match wrongly.
    for word in words {
        assert!(!word.is_empty() && !word.contains(' '), "bad word {word:?}");
    }
}

fn check_value(value: &Value) {
    if let Value::Number(number) = value {
        assert!(number.is_finite(), "non-finite filter number {number}");
    }
}

fuzz_target!(|input: Input| {
    check_words(&fuzzing::query_words(&input.query));
    let shape: Vec<usize> = input.groups.iter().map(Vec::len).collect();
    let groups: Vec<Vec<RawFilter>> = input
        .groups
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .map(|filter| RawFilter {
                    property: match filter.property {
                        Name::Known(index) => NAMES[usize::from(index) % NAMES.len()].to_owned(),
                        Name::Other(name) => name,
                    },
                    operator: OPERATORS.get(usize::from(filter.operator)).copied(),
                    value: filter.value,
                    values: filter.values,
                    high_value: filter.high_value,
                })
                .collect()
        })
        .collect();
    let Ok(compiled) = fuzzing::search_filters(groups, &DEFINITIONS) else {
        return;
    };
    assert_eq!(compiled.iter().map(Vec::len).collect::<Vec<_>>(), shape);
    for predicate in compiled.iter().flatten() {
        match &predicate.comparison {
            Comparison::Eq(value)
            | Comparison::Lt(value)
            | Comparison::Lte(value)
            | Comparison::Gt(value)
            | Comparison::Gte(value) => check_value(value),
            Comparison::Between(low, high) => {
                check_value(low);
                check_value(high);
            }
            Comparison::In(values) => {
                assert!(!values.is_empty());
                values.iter().for_each(check_value);
            }
            Comparison::HasValue => {}
            Comparison::ContainsToken(words) => {
                assert!(!words.is_empty());
                check_words(words);
            }
        }
    }
});
