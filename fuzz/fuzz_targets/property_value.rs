//! Custom property values: any text, under each property type, is refused or normalised to a canonical form
//! that normalises to itself (tickets store it; filters compare against it).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ticketd::{
    domain::property::{PropertyOption, PropertyType},
    fuzzing,
};

const TYPES: [PropertyType; 6] = [
    PropertyType::String,
    PropertyType::Number,
    PropertyType::Bool,
    PropertyType::Date,
    PropertyType::DateTime,
    PropertyType::Enumeration,
];

static OPTIONS: LazyLock<Vec<PropertyOption>> = LazyLock::new(|| {
    ["gold", "silver", " padded ", "ünï"]
        .into_iter()
        .zip(0..)
        .map(|(value, display_order)| PropertyOption {
            label: value.to_uppercase(),
            value: value.to_owned(),
            display_order,
            hidden: false,
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(canonical) = fuzzing::canonical_decimal(raw) {
        assert_eq!(
            fuzzing::canonical_decimal(&canonical).as_deref(),
            Some(canonical.as_str())
        );
    }
    for property_type in TYPES {
        let Ok(value) = fuzzing::property_value(property_type, &OPTIONS, raw) else {
            continue;
        };
        let again =
            fuzzing::property_value(property_type, &OPTIONS, &value.text).unwrap_or_else(|why| {
                panic!(
                    "{property_type:?} {raw:?} normalises to {:?}, which is refused: {why}",
                    value.text
                )
            });
        assert_eq!(
            again, value,
            "{property_type:?} {raw:?} is not normalised in one step"
        );
        if let Some(number) = value.number {
            assert!(number.is_finite());
        }
    }
});
