//! What can go wrong, how it is printed (`error: CODE: message` and the field violations) and the exit code
//! each case ends the process with (the table is in `--help` and the README).

use std::fmt::Write as _;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Exit code of a usage or local error.
pub const EXIT_LOCAL: u8 = 1;
/// Exit code of an import in which some items were refused.
pub const EXIT_PARTIAL: u8 = 2;
/// A server error exits with this plus its gRPC code, so every code has its own exit code.
pub const EXIT_RPC_BASE: u8 = 10;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Nothing reached the server: a malformed flag, an unreadable file.
    Local(String),
    /// The server (or the transport, as UNAVAILABLE) answered with an error.
    Rpc(Status),
    /// An import finished with this many refused items, already reported one by one.
    Partial { failed: usize },
}

impl CliError {
    /// A local error with this message.
    pub fn local(message: impl Into<String>) -> Self {
        Self::Local(message.into())
    }

    /// The process's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Local(_) => EXIT_LOCAL,
            Self::Partial { .. } => EXIT_PARTIAL,
            Self::Rpc(status) => rpc_exit_code(status.code()),
        }
    }

    /// What is printed on stderr.
    pub fn render(&self) -> String {
        match self {
            Self::Local(message) => format!("error: {message}"),
            Self::Rpc(status) => render_status(status),
            Self::Partial { failed } => {
                format!("error: {failed} item(s) were not imported (see above)")
            }
        }
    }
}

impl From<Status> for CliError {
    fn from(status: Status) -> Self {
        Self::Rpc(status)
    }
}

/// `EXIT_RPC_BASE` plus the code's number.
pub fn rpc_exit_code(code: Code) -> u8 {
    // gRPC codes are 0..=16, so the sum fits a u8 and stays below 128 (shells use 128+ for signals).
    EXIT_RPC_BASE + code as u8
}

/// `error: CODE: message`, then `  field: description` for every field violation in the details.
pub fn render_status(status: &Status) -> String {
    let mut text = format!("error: {}", describe_status(status));
    for line in violations(status) {
        let _ = write!(text, "\n  {line}");
    }
    text
}

/// `CODE: message`, without the violations.
pub fn describe_status(status: &Status) -> String {
    format!("{}: {}", code_name(status.code()), status.message())
}

/// `field: description` for each field violation of a status's `BadRequest` detail.
pub fn violations(status: &Status) -> Vec<String> {
    let Ok(details) = status.check_error_details() else {
        // Details that do not decode are not worth failing over: the message still says what happened.
        return Vec::new();
    };
    details
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|violation| format!("{}: {}", violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default()
}

/// The status an import item was answered with, as a `tonic::Status`, details included.
pub fn status_of_item(status: &tonic_types::Status) -> Status {
    use prost::Message as _;
    // `grpc-status-details-bin` carries the whole encoded google.rpc.Status, which is what `StatusExt` reads.
    Status::with_details(
        Code::from_i32(status.code),
        status.message.clone(),
        status.encode_to_vec().into(),
    )
}

/// The code's name as the gRPC specification spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    #[test]
    fn a_status_prints_its_code_message_and_violations() {
        let details =
            ErrorDetails::with_bad_request_violation("ticket.subject", "must not be empty");
        let status = Status::with_error_details(Code::InvalidArgument, "bad ticket", details);
        assert_eq!(
            render_status(&status),
            "error: INVALID_ARGUMENT: bad ticket\n  ticket.subject: must not be empty"
        );
        assert_eq!(CliError::Rpc(status).exit_code(), 13);
    }

    #[test]
    fn every_code_has_its_own_exit_code() {
        assert_eq!(rpc_exit_code(Code::NotFound), 15);
        assert_eq!(rpc_exit_code(Code::Unauthenticated), 26);
        assert_eq!(CliError::local("x").exit_code(), 1);
        assert_eq!(CliError::Partial { failed: 1 }.exit_code(), 2);
    }
}
