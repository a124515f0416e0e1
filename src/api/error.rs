//! The one mapping from domain errors to gRPC statuses, with rich details (`google.rpc.*`).

use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

/// `ErrorInfo.domain` of every error ticketd returns.
pub const ERROR_DOMAIN: &str = "ticketd";

/// How long a client should wait before retrying a call the database could not serve (`RetryInfo`).
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Longest quoted client value an error repeats; longer ones are cut and end in "…".
pub const MAX_ECHOED_CHARS: usize = 100;
/// Longest message or detail string of an error, whatever it quotes: statuses travel in HTTP/2 headers, which
/// clients and proxies refuse beyond a few KiB.
pub const MAX_ERROR_TEXT_CHARS: usize = 1_000;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        // Everything below that reaches the client passes through `echo`, so no client value comes back longer
        // than MAX_ECHOED_CHARS however the message quoting it was written.
        let mut message = echo(&error.to_string());
        let mut details = ErrorDetails::new();
        let code = match error {
            Error::InvalidArgument { field, description } => {
                details
                    .add_bad_request_violation(echo(&field), echo(&description))
                    .set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::new());
                Code::InvalidArgument
            }
            Error::PermissionDenied { field, .. } => {
                details.set_error_info(
                    "PERMISSION_DENIED",
                    ERROR_DOMAIN,
                    HashMap::from([("field".to_owned(), echo(&field))]),
                );
                Code::PermissionDenied
            }
            Error::RequestIdReused { request_id } => {
                details
                    .add_bad_request_violation("request_id", message.clone())
                    .set_error_info(
                        "REQUEST_ID_REUSED",
                        ERROR_DOMAIN,
                        HashMap::from([("request_id".to_owned(), echo(&request_id))]),
                    );
                Code::InvalidArgument
            }
            Error::NotFound { resource, id } => {
                details
                    .set_resource_info(resource, echo(&id), "", message.clone())
                    .set_error_info(
                        format!("{}_NOT_FOUND", resource.to_uppercase()),
                        ERROR_DOMAIN,
                        HashMap::new(),
                    );
                Code::NotFound
            }
            Error::FailedPrecondition {
                reason,
                ref message,
            } => {
                details
                    .add_precondition_failure_violation(reason, "", echo(message))
                    .set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                Code::FailedPrecondition
            }
            Error::EtagMismatch {
                resource,
                id,
                current,
                ..
            } => {
                details
                    .set_resource_info(resource, echo(&id), "", "")
                    .set_error_info(
                        "ETAG_MISMATCH",
                        ERROR_DOMAIN,
                        HashMap::from([("current_etag".to_owned(), current)]),
                    );
                Code::Aborted
            }
            Error::VersionMismatch {
                resource,
                id,
                current,
                ..
            } => {
                details
                    .set_resource_info(resource, echo(&id), "", "")
                    .set_error_info(
                        "VERSION_MISMATCH",
                        ERROR_DOMAIN,
                        HashMap::from([("current_version".to_owned(), current.to_string())]),
                    );
                Code::Aborted
            }
            Error::AlreadyExists {
                resource,
                field,
                value,
            } => {
                details.set_error_info(
                    format!("{}_ALREADY_EXISTS", resource.to_uppercase()),
                    ERROR_DOMAIN,
                    HashMap::from([(echo(&field), echo(&value))]),
                );
                Code::AlreadyExists
            }
            Error::InBatch {
                list,
                index,
                source,
            } => {
                let item = Status::from(*source);
                message = format!("{list}[{index}]: {}", item.message());
                details = item.get_error_details();
                item.code()
            }
            Error::Contended(_) => {
                // The store already retried; the same request sent again will find the winner's change.
                details.set_retry_info(Some(RETRY_DELAY)).set_error_info(
                    "CONTENDED",
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                Code::Aborted
            }
            Error::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                invite_retry(&mut details);
                message = "the database is unavailable; retry with backoff".to_owned();
                Code::Unavailable
            }
            Error::Internal(source) => {
                // The full chain goes to the log only: it may hold SQL or connection details.
                tracing::error!(error = %error_chain(&*source), "internal error");
                message = "internal error".to_owned();
                Code::Internal
            }
        };
        // The one exit, so the `google.rpc.Status` in `grpc-status-details-bin` always carries this status's
        // code and message: clients such as Python's `grpc_status.from_call` refuse a mismatch.
        Status::with_error_details(code, message, details)
    }
}

/// UNAVAILABLE with a `RetryInfo`, which gRPC clients and their retry policies read as "safe to retry, after
/// this delay": for the database being away, never for a client's mistake.
pub fn unavailable(message: &str) -> Status {
    let mut details = ErrorDetails::new();
    invite_retry(&mut details);
    Status::with_error_details(Code::Unavailable, message, details)
}

fn invite_retry(details: &mut ErrorDetails) {
    details.set_retry_info(Some(RETRY_DELAY)).set_error_info(
        "DATABASE_UNAVAILABLE",
        ERROR_DOMAIN,
        HashMap::new(),
    );
}

/// `text` with every client value it may quote cut to [`MAX_ECHOED_CHARS`] and an ellipsis, and the whole to
/// [`MAX_ERROR_TEXT_CHARS`]. Values are recognised by shape, so no message has to remember to cut them: a
/// double-quoted run (as `{:?}` prints strings; an escaped quote does not end it), or a run of characters up
/// to a space or one of `:,;` (as field paths carry property names). No word of ours comes near the limit.
pub fn echo(text: &str) -> String {
    let mut bounded = String::with_capacity(text.len().min(MAX_ERROR_TEXT_CHARS + 8));
    let mut written = 0;
    let mut push = |bounded: &mut String, char: char| {
        bounded.push(char);
        written += 1;
        written < MAX_ERROR_TEXT_CHARS
    };
    let mut chars = text.chars();
    let mut word = 0;
    while let Some(char) = chars.next() {
        let room = if char == '"' {
            word = 0;
            let mut room = push(&mut bounded, '"');
            let mut length = 0;
            let mut escaped = false;
            for quoted in chars.by_ref() {
                if quoted == '"' && !escaped {
                    room = push(&mut bounded, '"');
                    break;
                }
                escaped = quoted == '\\' && !escaped;
                length += 1;
                room = within_limit(length, quoted).is_none_or(|char| push(&mut bounded, char));
                if !room {
                    break;
                }
            }
            room
        } else if char.is_whitespace() || matches!(char, ':' | ',' | ';') {
            word = 0;
            push(&mut bounded, char)
        } else {
            word += 1;
            within_limit(word, char).is_none_or(|char| push(&mut bounded, char))
        };
        if !room {
            if chars.next().is_some() {
                bounded.push('…');
            }
            break;
        }
    }
    bounded
}

/// What to write as the `length`th character of one value: the character itself up to the limit, one "…" just
/// past it, then nothing.
fn within_limit(length: usize, char: char) -> Option<char> {
    match length.cmp(&(MAX_ECHOED_CHARS + 1)) {
        std::cmp::Ordering::Less => Some(char),
        std::cmp::Ordering::Equal => Some('…'),
        std::cmp::Ordering::Greater => None,
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_are_untouched() {
        let message = r#"ticket.subject: must not be empty, got "" (see "a \"quoted\" word")"#;
        assert_eq!(echo(message), message);
    }

    #[test]
    fn a_long_quoted_value_is_cut_and_the_rest_of_the_message_kept() {
        let value = "x".repeat(1_000_000);
        let message = format!("properties[{value:?}]: unknown property; define it first");
        let echoed = echo(&message);
        let expected = format!(
            "properties[\"{}…\"]: unknown property; define it first",
            "x".repeat(MAX_ECHOED_CHARS)
        );
        assert_eq!(echoed, expected);
    }

    #[test]
    fn escaped_quotes_do_not_end_a_value_early() {
        let value = format!("{}\"{}", "a".repeat(50), "b".repeat(200));
        let echoed = echo(&format!("name {value:?} is taken"));
        assert!(echoed.ends_with("…\" is taken"), "{echoed}");
        assert!(!echoed.contains(&"b".repeat(MAX_ECHOED_CHARS)), "{echoed}");
    }

    #[test]
    fn a_long_unquoted_word_is_cut() {
        let path = format!("ticket.properties.{}", "y".repeat(100_000));
        let echoed = echo(&format!("{path}: unknown property"));
        let expected = format!("ticket.properties.{}…: unknown property", "y".repeat(82));
        assert_eq!(echoed, expected);
    }

    #[test]
    fn many_short_words_are_bounded_as_a_whole() {
        let echoed = echo(&"word ".repeat(100_000));
        assert_eq!(echoed.chars().count(), MAX_ERROR_TEXT_CHARS + 1);
        assert!(echoed.ends_with('…'));
    }

    #[test]
    fn every_status_text_is_bounded() {
        let huge = "z".repeat(200_000);
        let status = Status::from(Error::invalid(huge.clone(), format!("bad value {huge:?}")));
        assert!(
            status.message().len() < 4 * MAX_ERROR_TEXT_CHARS,
            "{}",
            status.message().len()
        );
        assert!(status.details().len() < 8 * MAX_ERROR_TEXT_CHARS);
        let status = Status::from(Error::AlreadyExists {
            resource: "portal",
            field: "slug".into(),
            value: huge,
        });
        assert!(status.message().len() < 4 * MAX_ERROR_TEXT_CHARS);
        assert!(status.details().len() < 8 * MAX_ERROR_TEXT_CHARS);
    }
}
