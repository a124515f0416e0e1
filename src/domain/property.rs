//! Custom property definitions and the typed values tickets carry for them.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Longest property name.
pub const NAME_MAX_CHARS: usize = 100;
/// Longest label, description or group name.
pub const TEXT_MAX_CHARS: usize = 1_000;
/// Most options an enumeration may have.
pub const MAX_OPTIONS: usize = 1_000;

/// What values a property holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PropertyType {
    String,
    Number,
    Bool,
    Date,
    DateTime,
    Enumeration,
}

impl PropertyType {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::Number => "NUMBER",
            Self::Bool => "BOOL",
            Self::Date => "DATE",
            Self::DateTime => "DATETIME",
            Self::Enumeration => "ENUMERATION",
        }
    }

    /// Reads the stored spelling back.
    pub fn from_stored(value: &str) -> Option<Self> {
        Some(match value {
            "STRING" => Self::String,
            "NUMBER" => Self::Number,
            "BOOL" => Self::Bool,
            "DATE" => Self::Date,
            "DATETIME" => Self::DateTime,
            "ENUMERATION" => Self::Enumeration,
            _ => return None,
        })
    }
}

/// One choice of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    pub display_order: i32,
    pub hidden: bool,
}

/// A custom property as defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyDefinition {
    pub name: String,
    pub label: String,
    pub description: String,
    pub group_name: String,
    pub property_type: PropertyType,
    pub options: Vec<PropertyOption>,
    pub required: bool,
    pub default_value: Option<String>,
    pub agent_only: bool,
    pub customer_visible: bool,
    pub customer_editable: bool,
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub archive_time: Option<DateTime<Utc>>,
}

/// A value in canonical text form together with the typed copies searches compare.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedValue {
    pub text: String,
    pub number: Option<f64>,
    pub time: Option<DateTime<Utc>>,
    /// For STRING values: the words, lower case, as `" word word "`.
    pub tokens: Option<String>,
}

impl PropertyDefinition {
    /// Resource name used in errors and etags.
    pub const RESOURCE: &'static str = "property";

    /// The current etag.
    pub fn etag(&self) -> String {
        super::etag::etag(Self::RESOURCE, &self.name, self.version)
    }

    /// Whether the definition is in the trash.
    pub fn archived(&self) -> bool {
        self.archive_time.is_some()
    }

    /// Parses `raw` under this definition into its canonical form, or says why it does not fit.
    pub fn parse_value(&self, raw: &str) -> std::result::Result<TypedValue, String> {
        parse_typed(self.property_type, &self.options, raw)
    }

    /// Checks the rules that tie fields together; errors name the field relative to the definition.
    pub fn validate(&mut self) -> Result<()> {
        check_name(&self.name)?;
        self.label = required_text("label", &self.label)?;
        self.description = optional_text("description", &self.description)?;
        self.group_name = optional_text("group_name", &self.group_name)?;
        match self.property_type {
            PropertyType::Enumeration if self.options.is_empty() => {
                return Err(Error::invalid(
                    "options",
                    "an ENUMERATION needs at least one option",
                ));
            }
            PropertyType::Enumeration => {}
            other if !self.options.is_empty() => {
                return Err(Error::invalid(
                    "options",
                    format!(
                        "only ENUMERATION properties have options, not {}",
                        other.as_str()
                    ),
                ));
            }
            _ => {}
        }
        if self.options.len() > MAX_OPTIONS {
            return Err(Error::invalid(
                "options",
                format!("at most {MAX_OPTIONS} options, got {}", self.options.len()),
            ));
        }
        let mut values = HashSet::new();
        for (index, option) in self.options.iter_mut().enumerate() {
            let field = |name: &str| format!("options[{index}].{name}");
            option.value = option.value.trim().to_owned();
            if option.value.is_empty() {
                return Err(Error::invalid(field("value"), "is required"));
            }
            if !values.insert(option.value.clone()) {
                return Err(Error::invalid(
                    field("value"),
                    format!("{:?} is used by an earlier option", option.value),
                ));
            }
            option.label = optional_text(&field("label"), &option.label)?;
            if option.label.is_empty() {
                option.label = option.value.clone();
            }
        }
        if let Some(default) = &self.default_value {
            let parsed = self
                .parse_value(default)
                .map_err(|reason| Error::invalid("default_value", reason))?;
            self.default_value = Some(parsed.text);
        }
        if self.agent_only && self.customer_editable {
            return Err(Error::invalid(
                "customer_editable",
                "an agent_only property cannot be customer_editable",
            ));
        }
        Ok(())
    }
}

/// Property names are lower_snake_case so they read the same in every client and query.
pub fn check_name(name: &str) -> Result<()> {
    if super::text::is_lower_snake_case(name, NAME_MAX_CHARS) {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!(
                "{name:?} is not lower_snake_case (a-z, 0-9 and _, starting with a letter, at most {NAME_MAX_CHARS} characters)"
            ),
        ))
    }
}

fn required_text(field: &str, raw: &str) -> Result<String> {
    let text = optional_text(field, raw)?;
    if text.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Ok(text)
}

fn optional_text(field: &str, raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > TEXT_MAX_CHARS {
        return Err(Error::invalid(
            field,
            format!("must be at most {TEXT_MAX_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Parses `raw` as a value of `property_type` (with `options` for enumerations) into canonical form.
pub fn parse_typed(
    property_type: PropertyType,
    options: &[PropertyOption],
    raw: &str,
) -> std::result::Result<TypedValue, String> {
    let trimmed = raw.trim();
    let text_only = |text: String| TypedValue {
        text,
        number: None,
        time: None,
        tokens: None,
    };
    match property_type {
        PropertyType::String => {
            if raw.chars().count() > super::ticket::PROPERTY_VALUE_MAX_CHARS {
                return Err(format!(
                    "is longer than {} characters",
                    super::ticket::PROPERTY_VALUE_MAX_CHARS
                ));
            }
            Ok(TypedValue {
                tokens: Some(format!(" {} ", super::search::query_words(raw).join(" "))),
                ..text_only(raw.to_owned())
            })
        }
        PropertyType::Number => {
            let not_a_number = || format!("{raw:?} is not a NUMBER");
            // The text keeps every significant digit; the double beside it is only for comparing.
            let text = canonical_decimal(trimmed).ok_or_else(not_a_number)?;
            let number = text
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .ok_or_else(not_a_number)?;
            Ok(TypedValue {
                number: Some(number),
                ..text_only(text)
            })
        }
        PropertyType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(text_only("true".to_owned())),
            "false" | "no" | "0" => Ok(text_only("false".to_owned())),
            _ => Err(format!("{raw:?} is not a BOOL (true or false)")),
        },
        PropertyType::Date => {
            let date = parse_iso_date(trimmed)
                .ok_or_else(|| format!("{raw:?} is not a DATE (YYYY-MM-DD)"))?;
            Ok(TypedValue {
                time: date.and_hms_opt(0, 0, 0).map(|midnight| midnight.and_utc()),
                ..text_only(date.format(ISO_DATE).to_string())
            })
        }
        PropertyType::DateTime => {
            let time = DateTime::parse_from_rfc3339(trimmed)
                .map_err(|_| format!("{raw:?} is not a DATETIME (RFC 3339)"))?
                .with_timezone(&Utc);
            // Stored in UTC, which RFC 3339 must still be able to write: an offset can carry a time at a year
            // bound (9999-12-31T23:59:59-23:59) into a year of five digits or below zero, which the stored
            // form could not be read back from (found by the property_value fuzz target).
            if !(0..=9999).contains(&chrono::Datelike::year(&time)) {
                return Err(format!(
                    "{raw:?} is outside the DATETIME range (years 0000 to 9999 in UTC)"
                ));
            }
            Ok(TypedValue {
                time: Some(time),
                ..text_only(time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            })
        }
        PropertyType::Enumeration => options
            .iter()
            .find(|option| option.value == trimmed)
            .map(|option| text_only(option.value.clone()))
            .ok_or_else(|| {
                let allowed: Vec<&str> =
                    options.iter().map(|option| option.value.as_str()).collect();
                format!("{raw:?} is not one of the options {}", allowed.join(", "))
            }),
    }
}

/// A calendar date as ISO 8601 writes it, `YYYY-MM-DD`, for formatting; parse with [`parse_iso_date`].
pub const ISO_DATE: &str = "%Y-%m-%d";

/// A date written exactly `YYYY-MM-DD`: chrono alone also takes `2024-1-1`, `+2024-01-01` or `-001-01-01`,
/// which the format does not allow, so the text must be what the date formats back to.
pub fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, ISO_DATE)
        .ok()
        .filter(|date| text.len() == 10 && date.format(ISO_DATE).to_string() == text)
}

/// Largest decimal exponent kept: past it a double is infinite or zero anyway.
const MAX_DECIMAL_EXPONENT: i64 = 400;

/// The shortest plain decimal with the same value as `raw` (`"1.50"` → `"1.5"`, `"1e3"` → `"1000"`,
/// `"-0"` → `"0"`, `".5"` → `"0.5"`), keeping every significant digit; `None` when `raw` is not a decimal.
pub fn canonical_decimal(raw: &str) -> Option<String> {
    let (negative, unsigned) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let is_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    if exponent.abs() > MAX_DECIMAL_EXPONENT {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let leading_zeros = digits.bytes().take_while(|&byte| byte == b'0').count();
    let significant = digits[leading_zeros..].trim_end_matches('0');
    if significant.is_empty() {
        return Some("0".to_owned());
    }
    // Where the decimal point falls within `significant`, counted from its left.
    let point = whole.len() as i64 + exponent - leading_zeros as i64;
    let length = significant.len() as i64;
    let body = if point <= 0 {
        format!(
            "0.{}{significant}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else if point >= length {
        format!("{significant}{}", "0".repeat((point - length) as usize))
    } else {
        let (integer, decimals) = significant.split_at(point as usize);
        format!("{integer}.{decimals}")
    };
    Some(if negative { format!("-{body}") } else { body })
}

/// Checks and normalises a ticket's properties against `definitions` (keyed by name); an empty value means
/// "no value" and is dropped. Errors name `properties.<name>`.
pub fn normalize_properties(
    definitions: &BTreeMap<String, PropertyDefinition>,
    properties: BTreeMap<String, String>,
) -> Result<BTreeMap<String, TypedValue>> {
    let mut normalized = BTreeMap::new();
    for (name, raw) in properties {
        if raw.is_empty() {
            continue;
        }
        let definition = writable_definition(definitions, &name)?;
        let value = definition
            .parse_value(&raw)
            .map_err(|reason| Error::invalid(format!("properties.{name}"), reason))?;
        normalized.insert(name, value);
    }
    Ok(normalized)
}

/// The definition a write names, refusing unknown and archived ones.
pub fn writable_definition<'a>(
    definitions: &'a BTreeMap<String, PropertyDefinition>,
    name: &str,
) -> Result<&'a PropertyDefinition> {
    let field = format!("properties.{name}");
    match definitions.get(name) {
        None => Err(Error::invalid(
            field,
            format!("there is no property named {name:?}; define it with CreateProperty first"),
        )),
        Some(definition) if definition.archived() => Err(Error::invalid(
            field,
            format!("property {name:?} is archived"),
        )),
        Some(definition) => Ok(definition),
    }
}

/// Gives every absent required property its default; errors name `properties` and list every required property
/// that is absent and has no usable default.
pub fn apply_required_defaults(
    definitions: &BTreeMap<String, PropertyDefinition>,
    properties: &mut BTreeMap<String, TypedValue>,
) -> Result<()> {
    let missing = fill_required_defaults(definitions, properties);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(
            "properties",
            format!("missing required properties: {}", missing.join(", ")),
        ))
    }
}

/// Gives every absent required property its default, returning the names of those left absent because they
/// have none (or one that no longer parses), in name order.
pub fn fill_required_defaults(
    definitions: &BTreeMap<String, PropertyDefinition>,
    properties: &mut BTreeMap<String, TypedValue>,
) -> Vec<String> {
    let mut missing = Vec::new();
    for definition in definitions.values() {
        if !definition.required
            || definition.archived()
            || properties.contains_key(&definition.name)
        {
            continue;
        }
        match definition
            .default_value
            .as_deref()
            .map(|raw| definition.parse_value(raw))
        {
            Some(Ok(value)) => {
                properties.insert(definition.name.clone(), value);
            }
            _ => missing.push(definition.name.clone()),
        }
    }
    missing
}

/// After a ticket's property map was edited from `before` to `after`: checks and normalises every property
/// whose value changed, rewriting `after` in canonical form. Returns each changed name with its new value, or
/// `None` where the value was removed. Removing a required property is refused; so is writing an unknown or
/// archived one. Errors name `properties.<name>`.
pub fn normalize_changes(
    definitions: &BTreeMap<String, PropertyDefinition>,
    before: &BTreeMap<String, String>,
    after: &mut BTreeMap<String, String>,
) -> Result<BTreeMap<String, Option<TypedValue>>> {
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect();
    let mut changes = BTreeMap::new();
    for name in changed {
        match after.get(&name).filter(|raw| !raw.is_empty()) {
            None => {
                after.remove(&name);
                if let Some(definition) = definitions.get(&name)
                    && definition.required
                    && !definition.archived()
                {
                    return Err(Error::invalid(
                        format!("properties.{name}"),
                        format!("property {name:?} is required and cannot be removed"),
                    ));
                }
                changes.insert(name, None);
            }
            Some(raw) => {
                let definition = writable_definition(definitions, &name)?;
                let value = definition
                    .parse_value(raw)
                    .map_err(|reason| Error::invalid(format!("properties.{name}"), reason))?;
                after.insert(name.clone(), value.text.clone());
                changes.insert(name, Some(value));
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod date_tests {
    use super::parse_iso_date;

    #[test]
    fn only_yyyy_mm_dd_is_a_date() {
        assert_eq!(
            parse_iso_date("2024-02-29").map(|date| date.to_string()),
            Some("2024-02-29".to_owned())
        );
        assert!(parse_iso_date("0001-01-01").is_some());
        for lenient in [
            "2024-1-1",
            "2024-01-1",
            "2024-1-01",
            "+2024-01-01",
            "-001-01-01",
            "-0001-01-01",
            "12024-01-01",
            "024-01-01",
            "2024-02-30",
            "2024-01-01 ",
            "20240101",
        ] {
            assert_eq!(parse_iso_date(lenient), None, "{lenient:?}");
        }
    }
}

#[cfg(test)]
mod datetime_tests {
    use super::{PropertyType, parse_typed};

    /// Found by the `property_value` fuzz target (fuzz/artifacts-found/property_value/).
    #[test]
    fn a_datetime_whose_utc_form_leaves_four_digit_years_is_refused() {
        for out_of_range in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"] {
            let refused = parse_typed(PropertyType::DateTime, &[], out_of_range);
            assert!(refused.is_err(), "{out_of_range:?} gave {refused:?}");
        }
        for stored in ["9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z"] {
            let parsed = parse_typed(PropertyType::DateTime, &[], stored).expect("in range");
            let again = parse_typed(PropertyType::DateTime, &[], &parsed.text).expect("reads back");
            assert_eq!(again.text, parsed.text);
        }
    }
}
