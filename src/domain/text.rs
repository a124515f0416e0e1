//! Text that every store can keep. PostgreSQL refuses U+0000 in `text` and in `jsonb` (as `\u0000`), SQLite
//! keeps it; so it is refused wherever a client's text enters: in every string of every request (checked as
//! requests are decoded, `api::codec`) and in every string and key of JSON a client sends as text.

use serde_json::Value;

use super::{Error, Result};

/// Why such a string is refused.
pub const NUL_REFUSED: &str = "must not contain the NUL character (U+0000)";

/// Whether UTF-8 `bytes` hold U+0000 (its only encoding is the byte 0).
pub fn holds_nul(bytes: &[u8]) -> bool {
    bytes.contains(&0)
}

/// The error for a string holding U+0000, at the field path whose segments are given innermost first
/// (`["[1]", "filters", "[0]", "filter_groups"]` is `filter_groups[0].filters[1]`): paths are built only on
/// failure, as the search for the NUL unwinds.
pub fn nul_refused(mut segments: Vec<String>) -> Error {
    segments.reverse();
    let mut field = String::new();
    for segment in segments {
        if !field.is_empty() && !segment.starts_with('[') {
            field.push('.');
        }
        field.push_str(&segment);
    }
    Error::invalid(field, NUL_REFUSED)
}

/// Refuses U+0000 in any key or string of a JSON document held by the request field `field`. The error names
/// the JSON path after `base` (`app_model.title`; with an empty base `schema.children[2].string`, as view errors
/// are named), or `field` for a fault at the document itself.
pub fn check_json(field: &str, base: &str, value: &Value) -> Result<()> {
    let Some(mut segments) = nul_in(value) else {
        return Ok(());
    };
    if !base.is_empty() {
        segments.push(base.to_owned());
    }
    if segments.is_empty() {
        segments.push(field.to_owned());
    }
    Err(nul_refused(segments))
}

/// The path to the first U+0000, innermost segment first; `None` when there is none.
fn nul_in(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(text) => holds_nul(text.as_bytes()).then(Vec::new),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            let mut segments = nul_in(item)?;
            segments.push(format!("[{index}]"));
            Some(segments)
        }),
        Value::Object(object) => object.iter().find_map(|(key, item)| {
            // A key holding NUL cannot be shown as a path segment; its object is named instead.
            if holds_nul(key.as_bytes()) {
                return Some(Vec::new());
            }
            let mut segments = nul_in(item)?;
            segments.push(key.clone());
            Some(segments)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// An id from another system: at most `max` characters and no control characters (ids are matched exactly and
/// end up in notes and links, where an invisible character would make two ids that look alike differ); errors
/// name `field`.
pub fn check_identifier(field: &str, id: &str, max: usize, required: bool) -> Result<()> {
    if id.is_empty() {
        return if required {
            Err(Error::invalid(field, "is required"))
        } else {
            Ok(())
        };
    }
    if id.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A lower_snake_case name of at most `max_chars`: starts with a letter, then letters, digits and `_`. The
/// one spelling rule for names clients type into keys (property names, object types, chat sources).
pub fn is_lower_snake_case(name: &str, max_chars: usize) -> bool {
    name.chars().count() <= max_chars
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
