//! Conditions of rules and webhooks: AIP-160 filters over one ticket, evaluated in memory.
//!
//! The grammar is the `aip-160` crate's (a maintained parser of the whole AIP-160 EBNF, with byte offsets in
//! its syntax errors); this module is the allow-list on top of it: which field paths exist (the card binding
//! paths: ticket fields, `pipeline.label`, `stage.label`, `stage.state`, `properties.<name>`), which
//! comparisons each kind of field takes, and what a value means. Everything is checked when the condition is
//! saved, so evaluation cannot fail: a rule that saved is a rule that runs.
//!
//! Semantics, per kind of field:
//! - integers (`id`, `pipeline_id`, `stage_id`): compared as numbers;
//! - `priority`: `LOW < MEDIUM < HIGH < URGENT`, names in any letter case; an unset priority matches only `!=`;
//! - `stage.state`: `OPEN` or `CLOSED`, `=` and `!=`;
//! - times (`create_time`, `update_time`, `close_time`): RFC 3339 values; an unset time matches only `!=`;
//! - `tags`: only `tags:"x"` (has the tag), `tags:*` (has any);
//! - text and properties: `=` and `!=` exact (a `*` at either end of the value matches any prefix or suffix),
//!   `:` contains ignoring letter case, `<`… compare as numbers when both sides are numbers, else as text;
//! - `field:*` on any field: the field is set (not empty).

use std::{cmp::Ordering, collections::BTreeSet};

use aip_160::ast::{Comparable, Comparator, Expression, Member, Restriction, StringMatch, Value};
use chrono::{DateTime, Utc};

use super::{
    Error, Result,
    card::{TicketContext, TicketPath, path_from_str, timestamp},
    field::TicketField,
    pipeline::TicketState,
    ticket::Priority,
};

/// Longest condition accepted, in bytes.
pub const MAX_CONDITION_BYTES: usize = 2_000;
/// Deepest nesting of parentheses and NOTs.
const MAX_DEPTH: usize = 16;

/// A checked condition; the empty condition matches every ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    expression: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Test(Test),
}

/// One restriction, with its value already typed for the field.
#[derive(Debug, Clone, PartialEq)]
struct Test {
    path: TicketPath,
    comparator: Comparator,
    operand: Operand,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `field:*`.
    Present,
    Integer(i64),
    Priority(Priority),
    State(TicketState),
    Time(DateTime<Utc>),
    Tag(String),
    /// Text and property values, as written.
    Text(String),
}

/// How a path's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Priority,
    State,
    Time,
    Tags,
    Text,
}

fn kind_of(path: &TicketPath) -> Kind {
    match path {
        TicketPath::StageState => Kind::State,
        TicketPath::PipelineLabel | TicketPath::StageLabel => Kind::Text,
        TicketPath::Field(field) => match field {
            TicketField::Id | TicketField::PipelineId | TicketField::StageId => Kind::Integer,
            TicketField::Priority => Kind::Priority,
            TicketField::CreateTime | TicketField::UpdateTime | TicketField::CloseTime => {
                Kind::Time
            }
            TicketField::Tags => Kind::Tags,
            _ => Kind::Text,
        },
    }
}

impl Condition {
    /// The condition that matches every ticket.
    pub fn always() -> Self {
        Self {
            text: String::new(),
            expression: None,
        }
    }

    /// Parses and checks `text`; errors name `field` and the byte offset of the problem.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        if text.len() > MAX_CONDITION_BYTES {
            return Err(Error::invalid(
                field,
                format!("must be at most {MAX_CONDITION_BYTES} bytes"),
            ));
        }
        let filter = aip_160::parser::parse_filter_with_max_depth(text, MAX_DEPTH)
            .map_err(|error| Error::invalid(field, error.to_string()))?;
        let checker = Checker { field, text };
        let expression = filter
            .expression
            .map(|expression| checker.expression(&expression))
            .transpose()?;
        Ok(Self {
            text: text.to_owned(),
            expression,
        })
    }

    /// The condition as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Names of the custom properties it reads, for the caller to check against the definitions.
    pub fn property_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        if let Some(expression) = &self.expression {
            expression.visit(&mut |test| {
                if let TicketPath::Field(TicketField::Property(name)) = &test.path {
                    names.insert(name.clone());
                }
            });
        }
        names
    }

    /// Whether the ticket (with its pipeline's and stage's labels) matches.
    pub fn matches(&self, ticket: &TicketContext) -> bool {
        self.expression
            .as_ref()
            .is_none_or(|expression| expression.matches(ticket))
    }
}

impl Expr {
    fn visit(&self, visitor: &mut impl FnMut(&Test)) {
        match self {
            Self::And(all) | Self::Or(all) => all.iter().for_each(|expr| expr.visit(visitor)),
            Self::Not(inner) => inner.visit(visitor),
            Self::Test(test) => visitor(test),
        }
    }

    fn matches(&self, ticket: &TicketContext) -> bool {
        match self {
            Self::And(all) => all.iter().all(|expr| expr.matches(ticket)),
            Self::Or(any) => any.iter().any(|expr| expr.matches(ticket)),
            Self::Not(inner) => !inner.matches(ticket),
            Self::Test(test) => test.matches(ticket),
        }
    }
}

impl Test {
    fn matches(&self, context: &TicketContext) -> bool {
        let ticket = context.ticket;
        let ordering = match (&self.path, &self.operand) {
            (path, Operand::Present) => {
                return !field_text(path, context).is_empty();
            }
            (_, Operand::Tag(tag)) => {
                return ticket
                    .tags
                    .iter()
                    .any(|held| held.eq_ignore_ascii_case(tag));
            }
            (path, Operand::Integer(value)) => {
                let held = match path {
                    TicketPath::Field(TicketField::Id) => ticket.id,
                    TicketPath::Field(TicketField::PipelineId) => ticket.pipeline_id,
                    _ => ticket.stage_id,
                };
                Some(held.cmp(value))
            }
            (_, Operand::Priority(value)) => ticket.priority.map(|held| held.cmp(value)),
            (_, Operand::State(value)) => Some(if context.stage_state == *value {
                Ordering::Equal
            } else {
                Ordering::Less
            }),
            (TicketPath::Field(field), Operand::Time(value)) => {
                let held = match field {
                    TicketField::CreateTime => Some(ticket.create_time),
                    TicketField::UpdateTime => Some(ticket.update_time),
                    _ => ticket.close_time,
                };
                held.map(|held| held.cmp(value))
            }
            (_, Operand::Time(_)) => None,
            (path, Operand::Text(value)) => {
                let held = field_text(path, context);
                return text_matches(&held, self.comparator, value);
            }
        };
        compare(ordering, self.comparator)
    }
}

/// A comparison's outcome from the ordering of the held value against the operand (`None`: unset).
fn compare(ordering: Option<Ordering>, comparator: Comparator) -> bool {
    let Some(ordering) = ordering else {
        return comparator == Comparator::NotEqual;
    };
    match comparator {
        Comparator::Equal | Comparator::Has => ordering == Ordering::Equal,
        Comparator::NotEqual => ordering != Ordering::Equal,
        Comparator::LessThan => ordering == Ordering::Less,
        Comparator::LessThanOrEqual => ordering != Ordering::Greater,
        Comparator::GreaterThan => ordering == Ordering::Greater,
        Comparator::GreaterThanOrEqual => ordering != Ordering::Less,
    }
}

fn text_matches(held: &str, comparator: Comparator, value: &str) -> bool {
    match comparator {
        Comparator::Has => held.to_lowercase().contains(&value.to_lowercase()),
        Comparator::Equal | Comparator::NotEqual => {
            let equal = match Value::String(value.to_owned()).string_match() {
                Some(StringMatch::Prefix(prefix)) => held.starts_with(prefix),
                Some(StringMatch::Suffix(suffix)) => held.ends_with(suffix),
                Some(StringMatch::Contains(part)) => held.contains(part),
                Some(StringMatch::Exact(exact)) => held == exact,
                None => held == value,
            };
            equal == (comparator == Comparator::Equal)
        }
        ordered => {
            let ordering = match (held.parse::<f64>(), value.parse::<f64>()) {
                (Ok(held), Ok(value)) => held.partial_cmp(&value),
                _ if held.is_empty() => None,
                _ => Some(held.cmp(value)),
            };
            ordering.is_some_and(|ordering| compare(Some(ordering), ordered))
        }
    }
}

/// The path's value as text, unbounded (conditions see the whole subject, unlike a card).
fn field_text(path: &TicketPath, context: &TicketContext) -> String {
    match path {
        TicketPath::Field(field) => field.text(context.ticket, timestamp),
        TicketPath::PipelineLabel => context.pipeline_label.to_owned(),
        TicketPath::StageLabel => context.stage_label.to_owned(),
        TicketPath::StageState => context.stage_state.as_str().to_owned(),
    }
}

/// Turns the parser's tree into [`Expr`], refusing what the allow-list does not know.
struct Checker<'a> {
    field: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn expression(&self, expression: &Expression) -> Result<Expr> {
        Ok(match expression {
            // A whitespace sequence is an AND for services that match exactly (AIP-160).
            Expression::And(all) | Expression::Sequence(all) => Expr::And(self.all(all)?),
            Expression::Or(any) => Expr::Or(self.all(any)?),
            Expression::Not(inner) => Expr::Not(Box::new(self.expression(inner)?)),
            Expression::Restriction(restriction) => Expr::Test(self.restriction(restriction)?),
            Expression::Global(comparable) => {
                let shown = match comparable {
                    Comparable::Member(member) => member_text(member),
                    Comparable::Function(function) => {
                        let name = function.name.join(".");
                        return Err(self.error(
                            &name,
                            format!("functions such as {name}() are not supported"),
                        ));
                    }
                };
                return Err(self.error(
                    &shown,
                    format!("{shown:?} compares nothing; name a field, e.g. subject:{shown:?}"),
                ));
            }
        })
    }

    fn all(&self, expressions: &[Expression]) -> Result<Vec<Expr>> {
        expressions
            .iter()
            .map(|expression| self.expression(expression))
            .collect()
    }

    fn restriction(&self, restriction: &Restriction) -> Result<Test> {
        let name = match &restriction.comparable {
            Comparable::Member(member) => member_text(member),
            Comparable::Function(function) => {
                let name = function.name.join(".");
                return Err(self.error(
                    &name,
                    format!("functions such as {name}() are not supported"),
                ));
            }
        };
        let path = path_from_str(&name).map_err(|why| self.error(&name, why))?;
        let comparator = restriction.comparator;
        let value = match restriction.arg.as_value() {
            Some(value) => value,
            None => {
                return Err(self.error(
                    &name,
                    format!(
                        "{name}: compare with a single value (a word, number or quoted string)"
                    ),
                ));
            }
        };
        let raw = value.as_str();
        let kind = kind_of(&path);
        if comparator == Comparator::Has && raw == "*" && !value.is_quoted() {
            return Ok(Test {
                path,
                comparator,
                operand: Operand::Present,
            });
        }
        let bad_value =
            |expected: &str| self.error(raw, format!("{name}: {raw:?} is not {expected}"));
        let ordered = matches!(
            comparator,
            Comparator::LessThan
                | Comparator::LessThanOrEqual
                | Comparator::GreaterThan
                | Comparator::GreaterThanOrEqual
        );
        let operand = match kind {
            Kind::Tags => {
                if comparator != Comparator::Has {
                    return Err(self.error(
                        &name,
                        format!("tags: use tags:{raw:?} (has the tag) or tags:* (has any tag)"),
                    ));
                }
                Operand::Tag(raw.to_owned())
            }
            _ if comparator == Comparator::Has && kind != Kind::Text => {
                return Err(self.error(
                    &name,
                    format!("{name}: ':' takes only * (is set) here; compare with = or !="),
                ));
            }
            Kind::Integer => {
                Operand::Integer(value.as_i64().ok_or_else(|| bad_value("an integer"))?)
            }
            Kind::Priority => Operand::Priority(
                Priority::from_stored(&raw.to_ascii_uppercase())
                    .ok_or_else(|| bad_value("a priority (LOW, MEDIUM, HIGH, URGENT)"))?,
            ),
            Kind::State => {
                if ordered {
                    return Err(self.error(&name, format!("{name}: compare with = or !=")));
                }
                Operand::State(
                    TicketState::from_stored(&raw.to_ascii_uppercase())
                        .ok_or_else(|| bad_value("a stage state (OPEN, CLOSED)"))?,
                )
            }
            Kind::Time => Operand::Time(
                DateTime::parse_from_rfc3339(raw)
                    .map(|time| time.with_timezone(&Utc))
                    .map_err(|_| bad_value("an RFC 3339 time such as \"2026-11-29T10:00:00Z\""))?,
            ),
            Kind::Text => Operand::Text(raw.to_owned()),
        };
        Ok(Test {
            path,
            comparator,
            operand,
        })
    }

    /// An INVALID_ARGUMENT naming where `near` first appears in the condition.
    fn error(&self, near: &str, why: impl std::fmt::Display) -> Error {
        match self.text.find(near).filter(|_| !near.is_empty()) {
            Some(offset) => Error::invalid(self.field, format!("at byte {offset}: {why}")),
            None => Error::invalid(self.field, why.to_string()),
        }
    }
}

fn member_text(member: &Member) -> String {
    member.field_path().unwrap_or_else(|| {
        std::iter::once(&member.value)
            .chain(&member.fields)
            .map(Value::as_str)
            .collect::<Vec<_>>()
            .join(".")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ticket::Ticket;

    fn ticket() -> Ticket {
        let time = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 2, 3, 4, 5).unwrap();
        Ticket {
            id: 7,
            subject: "Printer on fire".into(),
            content: String::new(),
            pipeline_id: 0,
            stage_id: 1,
            priority: Some(Priority::High),
            requester_id: "alice".into(),
            assignee_id: String::new(),
            organization_id: String::new(),
            ticket_type: String::new(),
            tags: vec!["vip".into(), "hardware".into()],
            project_id: String::new(),
            external_id: String::new(),
            properties: [
                ("region".to_owned(), "emea".to_owned()),
                ("seats".to_owned(), "12".to_owned()),
            ]
            .into(),
            create_time: time,
            update_time: time,
            close_time: None,
            archive_time: None,
            version: 1,
        }
    }

    fn matches(condition: &str, ticket: &Ticket, state: TicketState) -> bool {
        let context = TicketContext {
            ticket,
            pipeline_label: "Support",
            stage_label: "New",
            stage_state: state,
        };
        Condition::parse("condition", condition)
            .unwrap_or_else(|error| panic!("{condition}: {error}"))
            .matches(&context)
    }

    #[test]
    fn the_issue_example_reads_priority_state_and_tags() {
        let mut ticket = ticket();
        let example = r#"priority = URGENT AND stage.state = OPEN AND tags:"vip""#;
        assert!(!matches(example, &ticket, TicketState::Open));
        ticket.priority = Some(Priority::Urgent);
        assert!(matches(example, &ticket, TicketState::Open));
        assert!(!matches(example, &ticket, TicketState::Closed));
        ticket.tags.clear();
        assert!(!matches(example, &ticket, TicketState::Open));
    }

    #[test]
    fn each_kind_compares_by_its_own_order() {
        let ticket = ticket();
        let open = TicketState::Open;
        for (condition, expected) in [
            ("priority >= medium", true),
            ("priority > HIGH", false),
            ("id = 7", true),
            ("id < 7", false),
            ("properties.seats > 9", true),
            ("properties.region = emea", true),
            ("properties.region = \"em*\"", true),
            ("properties.missing:*", false),
            ("subject:fire", true),
            ("subject = \"Printer*\"", true),
            ("NOT subject:water", true),
            ("-tags:vip", false),
            ("assignee_id = \"\"", true),
            ("assignee_id:*", false),
            ("close_time < \"2030-01-01T00:00:00Z\"", false),
            ("close_time != \"2030-01-01T00:00:00Z\"", true),
            ("stage.label = New OR priority = LOW", true),
            (
                "(priority = LOW OR priority = HIGH) AND tags:hardware",
                true,
            ),
            ("", true),
        ] {
            assert_eq!(matches(condition, &ticket, open), expected, "{condition}");
        }
    }

    #[test]
    fn mistakes_are_refused_with_their_position() {
        for (condition, expected) in [
            ("prio = URGENT", "at byte 0: unknown ticket field \"prio\""),
            ("subject = x AND stage.color = red", "at byte 16"),
            ("priority = SOON", "is not a priority"),
            ("tags = vip", "tags: use tags:"),
            ("stage.state > OPEN", "compare with = or !="),
            ("id = seven", "is not an integer"),
            ("priority = (", "invalid filter at byte"),
            ("urgent", "compares nothing"),
            ("regex(subject, \"x\")", "functions"),
        ] {
            let error = Condition::parse("rule.condition", condition)
                .expect_err(condition)
                .to_string();
            assert!(
                error.starts_with("rule.condition: "),
                "{condition}: {error}"
            );
            assert!(error.contains(expected), "{condition}: {error}");
        }
    }

    #[test]
    fn property_names_are_reported_for_checking() {
        let condition =
            Condition::parse("c", "properties.region = emea OR NOT properties.seats > 3").unwrap();
        assert_eq!(
            condition.property_names().into_iter().collect::<Vec<_>>(),
            ["region", "seats"]
        );
    }
}
