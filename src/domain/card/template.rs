//! Strings with `${...}` bindings: literal text and expressions, parsed once and resolved per render.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::{Error, Result};

use super::*;

/// A string with bindings: literal text and `${...}` expressions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub(super) segments: Vec<Segment>,
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Binding(Binding),
}

/// A value a view refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `${Form.properties[NAME].value}`: a card property, NAME as written, matched ignoring letter case.
    Property(String),
    /// `${ticket.FIELD}`: a field of the card's ticket.
    Ticket(TicketPath),
}

/// Where a binding's value comes from during one render.
pub(super) struct Values<'a> {
    pub(super) properties: &'a BTreeMap<String, String>,
    pub(super) ticket: Option<&'a TicketContext<'a>>,
}

impl Template {
    /// Splits `text` into literals and bindings, reported as `field`; any `${...}` that is not a known binding
    /// is refused, so a typo shows at registration instead of as a blank on every card.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Literal(rest[..start].to_owned()));
            }
            let inside = &rest[start + 2..];
            let Some(end) = inside.find('}') else {
                let opened: String = rest[start..].chars().take(60).collect();
                return Err(Error::invalid(
                    field,
                    format!("unterminated binding {opened:?}: \"${{\" needs a closing \"}}\""),
                ));
            };
            let expression = &inside[..end];
            let binding = parse_binding(expression.trim())
                .map_err(|why| Error::invalid(field, format!("\"${{{expression}}}\": {why}")))?;
            segments.push(Segment::Binding(binding));
            rest = &inside[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Self { segments })
    }

    /// The literals and bindings, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The bindings, in order, repeats included.
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Binding(binding) => Some(binding),
            Segment::Literal(_) => None,
        })
    }

    /// The text with every binding replaced by its value; values are inserted as they are, never re-expanded.
    pub fn render(
        &self,
        properties: &BTreeMap<String, String>,
        ticket: Option<&TicketContext>,
    ) -> String {
        self.resolve(&Values { properties, ticket })
    }

    pub(super) fn resolve(&self, values: &Values) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Binding(binding) => {
                    out.push_str(&binding.resolve(values.properties, values.ticket));
                }
            }
        }
        out
    }
}

/// Reads one `${...}` expression (without the braces); the error says why it is not a binding.
fn parse_binding(expression: &str) -> std::result::Result<Binding, String> {
    const OPEN: &str = "form.properties[";
    const CLOSE: &str = "].value";
    let prefix = expression.get(..OPEN.len());
    if prefix.is_some_and(|prefix| prefix.eq_ignore_ascii_case(OPEN)) {
        let name = expression
            .len()
            .checked_sub(CLOSE.len())
            .filter(|&end| end >= OPEN.len())
            .filter(|&end| {
                expression
                    .get(end..)
                    .is_some_and(|suffix| suffix.eq_ignore_ascii_case(CLOSE))
            })
            .and_then(|end| expression.get(OPEN.len()..end))
            .ok_or("expected ${Form.properties[NAME].value}")?;
        if name.is_empty() || name.contains(['[', ']']) {
            return Err(format!(
                "property name {name:?} must be non-empty and without brackets"
            ));
        }
        return Ok(Binding::Property(name.to_owned()));
    }
    if let Some(path) = expression.strip_prefix("ticket.") {
        return path_from_str(path).map(Binding::Ticket);
    }
    Err("not a binding; expected ${Form.properties[NAME].value} or ${ticket.FIELD}".to_owned())
}

impl Binding {
    /// The bound value: a card property (exact name first, then ignoring case) or a ticket field; "" if missing.
    pub fn resolve(
        &self,
        properties: &BTreeMap<String, String>,
        ticket: Option<&TicketContext>,
    ) -> String {
        match self {
            Self::Property(name) => properties
                .get(name)
                .or_else(|| {
                    properties
                        .iter()
                        .find(|(key, _)| same_name(key, name))
                        .map(|(_, value)| value)
                })
                .map(|value| bounded(value.clone()))
                .unwrap_or_default(),
            Self::Ticket(path) => ticket.map(|view| path.resolve(view)).unwrap_or_default(),
        }
    }

    pub(super) fn same_as(&self, other: &Binding) -> bool {
        match (self, other) {
            (Self::Property(a), Self::Property(b)) => same_name(a, b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Property(name) => write!(f, "${{Form.properties[{name}].value}}"),
            Self::Ticket(path) => write!(f, "${{ticket.{path}}}"),
        }
    }
}

/// `value` cut to [`MAX_BOUND_VALUE_CHARS`], ending in "…" when cut.
pub(super) fn bounded(mut value: String) -> String {
    if let Some((end, _)) = value.char_indices().nth(MAX_BOUND_VALUE_CHARS) {
        value.truncate(end);
        value.pop();
        value.push('…');
    }
    value
}

/// Card property names are compared ignoring letter case, as Kaizala does.
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}
