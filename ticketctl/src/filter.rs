//! `--filter` terms onto SearchTickets' filter groups, and `--order-by` onto ListTickets' `order_by` and
//! SearchTickets' `sorts`. Only the syntax is checked here: field names and values are the server's to judge,
//! so its INVALID_ARGUMENT names exactly what it does not accept.

use ticketd::proto::{Filter, FilterGroup, FilterOperator, Sort};

use crate::error::CliError;

/// The groups (any may match) of every `--filter` flag; the flags must all match.
pub fn parse_filters(flags: &[String]) -> Result<Vec<FilterGroup>, CliError> {
    // (a OR b) AND (c OR d) is (a AND c) OR (a AND d) OR (b AND c) OR (b AND d): groups are what the API has.
    let mut groups: Vec<Vec<Filter>> = vec![Vec::new()];
    for flag in flags {
        let alternatives = parse_expression(flag)?;
        let mut combined = Vec::with_capacity(groups.len() * alternatives.len());
        for group in &groups {
            for alternative in &alternatives {
                let mut both = group.clone();
                both.extend(alternative.iter().cloned());
                combined.push(both);
            }
        }
        groups = combined;
    }
    Ok(groups
        .into_iter()
        .filter(|filters| !filters.is_empty())
        .map(|filters| FilterGroup { filters })
        .collect())
}

/// `t1 AND t2 OR t3`: groups of terms, OR between groups, AND within.
fn parse_expression(expression: &str) -> Result<Vec<Vec<Filter>>, CliError> {
    let mut groups = Vec::new();
    for alternative in split_word(expression, "OR") {
        let mut filters = Vec::new();
        for term in split_word(alternative, "AND") {
            let term = term.trim();
            if term.is_empty() {
                return Err(CliError::local(format!(
                    "--filter {expression:?}: an empty term (around AND/OR)"
                )));
            }
            filters.push(parse_term(term)?);
        }
        groups.push(filters);
    }
    Ok(groups)
}

/// Splits on ` WORD ` (surrounded by white space, any case).
fn split_word<'a>(text: &'a str, word: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut index = 0;
    while index + word.len() + 2 <= bytes.len() {
        let candidate = &bytes[index..index + word.len() + 2];
        if candidate[0].is_ascii_whitespace()
            && candidate[word.len() + 1].is_ascii_whitespace()
            && candidate[1..=word.len()].eq_ignore_ascii_case(word.as_bytes())
        {
            parts.push(&text[start..index]);
            start = index + word.len() + 2;
            index = start;
        } else {
            index += 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The operators, longest first so that `!=` is not read as `=`.
const OPERATORS: [(&str, FilterOperator); 8] = [
    ("!=", FilterOperator::Neq),
    ("!~", FilterOperator::NotContainsToken),
    ("<=", FilterOperator::Lte),
    (">=", FilterOperator::Gte),
    ("=", FilterOperator::Eq),
    ("~", FilterOperator::ContainsToken),
    ("<", FilterOperator::Lt),
    (">", FilterOperator::Gt),
];

/// One term: `field OP value`, `field` or `!field`.
fn parse_term(term: &str) -> Result<Filter, CliError> {
    let found = term.char_indices().find_map(|(index, _)| {
        OPERATORS
            .iter()
            .find(|(symbol, _)| term[index..].starts_with(symbol))
            .map(|(symbol, operator)| (index, *symbol, *operator))
    });
    let Some((index, symbol, operator)) = found else {
        let (property, operator) = match term.strip_prefix('!') {
            Some(property) => (property.trim(), FilterOperator::NotHasProperty),
            None => (term, FilterOperator::HasProperty),
        };
        check_field(term, property)?;
        return Ok(filter(property, operator));
    };
    let property = term[..index].trim();
    let value = term[index + symbol.len()..].trim();
    check_field(term, property)?;
    let mut result = filter(property, operator);
    match operator {
        FilterOperator::Eq | FilterOperator::Neq if value.contains('|') => {
            result.operator = if operator == FilterOperator::Eq {
                FilterOperator::In
            } else {
                FilterOperator::NotIn
            } as i32;
            result.values = value.split('|').map(|one| one.trim().to_owned()).collect();
        }
        _ => result.value = value.to_owned(),
    }
    Ok(result)
}

fn check_field(term: &str, property: &str) -> Result<(), CliError> {
    if property.is_empty() || property.contains(char::is_whitespace) {
        return Err(CliError::local(format!(
            "--filter term {term:?}: expected FIELD=VALUE, FIELD!=VALUE, FIELD<VALUE, FIELD~WORD, FIELD or !FIELD"
        )));
    }
    Ok(())
}

fn filter(property: &str, operator: FilterOperator) -> Filter {
    Filter {
        property: property.to_owned(),
        operator: operator as i32,
        ..Filter::default()
    }
}

/// `--order-by`: a field and whether it is descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub field: String,
    pub descending: bool,
}

impl OrderBy {
    /// `FIELD`, `FIELD asc|desc`, `FIELD:asc|desc` or `-FIELD`.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let text = text.trim();
        let bad = || {
            CliError::local(format!(
                "--order-by {text:?}: expected FIELD, FIELD asc, FIELD desc or -FIELD"
            ))
        };
        if let Some(field) = text.strip_prefix('-') {
            return Self::new(field, true).ok_or_else(bad);
        }
        let mut words = text
            .split(|c: char| c.is_whitespace() || c == ':')
            .filter(|w| !w.is_empty());
        let field = words.next().ok_or_else(bad)?;
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") | Some("ascending") => false,
            Some("desc") | Some("descending") => true,
            Some(_) => return Err(bad()),
        };
        if words.next().is_some() {
            return Err(bad());
        }
        Self::new(field, descending).ok_or_else(bad)
    }

    fn new(field: &str, descending: bool) -> Option<Self> {
        let field = field.trim();
        (!field.is_empty() && !field.contains(char::is_whitespace)).then(|| Self {
            field: field.to_owned(),
            descending,
        })
    }

    /// ListTickets' `order_by`.
    pub fn to_list(&self) -> String {
        format!(
            "{} {}",
            self.field,
            if self.descending { "desc" } else { "asc" }
        )
    }

    /// SearchTickets' `sorts` entry.
    pub fn to_sort(&self) -> Sort {
        Sort {
            property: self.field.clone(),
            direction: if self.descending {
                "DESCENDING"
            } else {
                "ASCENDING"
            }
            .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(filter: &Filter) -> FilterOperator {
        FilterOperator::try_from(filter.operator).unwrap_or(FilterOperator::Unspecified)
    }

    #[test]
    fn terms_map_onto_operators() {
        let groups = parse_filters(&["priority=HIGH AND assignee_id!=a AND stage_id>=2 AND tags~vip AND !close_time AND hs_x".to_owned()]).unwrap();
        assert_eq!(groups.len(), 1);
        let filters = &groups[0].filters;
        let ops: Vec<_> = filters.iter().map(op).collect();
        assert_eq!(
            ops,
            [
                FilterOperator::Eq,
                FilterOperator::Neq,
                FilterOperator::Gte,
                FilterOperator::ContainsToken,
                FilterOperator::NotHasProperty,
                FilterOperator::HasProperty
            ]
        );
        assert_eq!(filters[0].property, "priority");
        assert_eq!(filters[0].value, "HIGH");
        assert_eq!(filters[2].value, "2");
        assert_eq!(filters[4].property, "close_time");
    }

    #[test]
    fn bars_make_in_and_not_in() {
        let groups = parse_filters(&["priority=LOW|HIGH and ticket_type!=a|b".to_owned()]).unwrap();
        let filters = &groups[0].filters;
        assert_eq!(op(&filters[0]), FilterOperator::In);
        assert_eq!(filters[0].values, ["LOW", "HIGH"]);
        assert_eq!(op(&filters[1]), FilterOperator::NotIn);
    }

    #[test]
    fn or_makes_groups_and_flags_distribute() {
        let groups = parse_filters(&["a=1 OR b=2".to_owned(), "c=3".to_owned()]).unwrap();
        let shape: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.filters.iter().map(|f| f.property.as_str()).collect())
            .collect();
        assert_eq!(shape, [vec!["a", "c"], vec!["b", "c"]]);
    }

    #[test]
    fn values_keep_their_spaces_and_words() {
        let groups =
            parse_filters(&["subject~printer AND ticket_type=big question".to_owned()]).unwrap();
        assert_eq!(groups[0].filters[1].value, "big question");
    }

    #[test]
    fn malformed_terms_are_local_errors() {
        assert!(parse_filters(&["=x".to_owned()]).is_err());
        assert!(parse_filters(&["a=1 AND  AND b=2".to_owned()]).is_err());
        assert!(parse_filters(&["two words".to_owned()]).is_err());
    }

    #[test]
    fn order_by_forms() {
        let desc = OrderBy {
            field: "update_time".into(),
            descending: true,
        };
        assert_eq!(OrderBy::parse("-update_time").unwrap(), desc);
        assert_eq!(OrderBy::parse("update_time desc").unwrap(), desc);
        assert_eq!(OrderBy::parse("update_time:DESC").unwrap(), desc);
        assert!(!OrderBy::parse("id").unwrap().descending);
        assert!(OrderBy::parse("id sideways").is_err());
        assert_eq!(desc.to_list(), "update_time desc");
        assert_eq!(desc.to_sort().direction, "DESCENDING");
    }
}
