//! The one mapping from domain errors to gRPC statuses, with rich details (`google.rpc.*`).

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Error;

/// `ErrorInfo.domain` of every error ticketd returns.
pub const ERROR_DOMAIN: &str = "ticketd";

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let mut message = error.to_string();
        let mut details = ErrorDetails::new();
        let code = match error {
            Error::InvalidArgument { field, description } => {
                details
                    .add_bad_request_violation(field, description)
                    .set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::new());
                Code::InvalidArgument
            }
            Error::PermissionDenied { field, .. } => {
                details.set_error_info(
                    "PERMISSION_DENIED",
                    ERROR_DOMAIN,
                    HashMap::from([("field".to_owned(), field)]),
                );
                Code::PermissionDenied
            }
            Error::RequestIdReused { request_id } => {
                details
                    .add_bad_request_violation("request_id", message.clone())
                    .set_error_info(
                        "REQUEST_ID_REUSED",
                        ERROR_DOMAIN,
                        HashMap::from([("request_id".to_owned(), request_id)]),
                    );
                Code::InvalidArgument
            }
            Error::NotFound { resource, id } => {
                details
                    .set_resource_info(resource, id, "", message.clone())
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
                    .add_precondition_failure_violation(reason, "", message.clone())
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
                    .set_resource_info(resource, id, "", "")
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
                    .set_resource_info(resource, id, "", "")
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
                    HashMap::from([(field, value)]),
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
            Error::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
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
