//! The one error type every layer below the API returns; `api::error` turns it into a `tonic::Status`.

/// Result with the domain error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a request, each variant naming what a client needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is malformed or refers to nothing; `field` is its path in the request.
    #[error("{field}: {description}")]
    InvalidArgument { field: String, description: String },
    /// The addressed resource does not exist.
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// The resource's state forbids the change; `reason` is a stable UPPER_SNAKE code.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    /// The etag sent is not the current one: someone changed the resource since the client read it.
    #[error(
        "{resource} {id} was changed since it was read: etag {sent:?} is not the current {current:?}"
    )]
    EtagMismatch {
        resource: &'static str,
        id: String,
        sent: String,
        current: String,
    },
    /// A versioned resource (a card) is not at the version the change was based on.
    #[error("{resource} {id} is at version {current}, not {sent}")]
    VersionMismatch {
        resource: &'static str,
        id: String,
        sent: i64,
        current: i64,
    },
    /// A resource with the same unique key already exists.
    #[error("{resource} with {field} {value:?} already exists")]
    AlreadyExists {
        resource: &'static str,
        field: String,
        value: String,
    },
    /// The caller's role or portal does not allow this; `field` names what it may not touch.
    #[error("{field}: {description}")]
    PermissionDenied { field: String, description: String },
    /// A `request_id` already used for a different request (another RPC or other fields).
    #[error("request_id {request_id:?} was already used for a different request")]
    RequestIdReused { request_id: String },
    /// A concurrent write took a unique key this one needed (two replicas escalating one conversation). The
    /// store reruns the transaction, which then finds the other's row; only a write that keeps losing sees it.
    #[error("{0}")]
    Contended(String),
    /// The database cannot be reached right now; the client may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// One item of a batch failed; the status is the item's, the message names it.
    #[error("{list}[{index}]: {source}")]
    InBatch {
        list: &'static str,
        index: usize,
        source: Box<Error>,
    },
    /// A fault of the service itself; the client sees an opaque message, the log the full chain.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A malformed or dangling request field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            description: description.into(),
        }
    }

    /// A field or action the caller may not touch.
    pub fn denied(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::PermissionDenied {
            field: field.into(),
            description: description.into(),
        }
    }

    /// A missing resource, identified by its id.
    pub fn not_found(resource: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            resource,
            id: id.to_string(),
        }
    }

    /// A change the resource's current state does not allow.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    /// Wraps an unexpected fault (database down, corrupt row, …).
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    /// Marks the error as item `index` of the batch field `list`: a field violation's path gains the prefix,
    /// any other error names the item in its message.
    pub fn in_batch(self, list: &'static str, index: usize) -> Self {
        match self {
            Self::InvalidArgument { field, description } => Self::InvalidArgument {
                field: format!("{list}[{index}].{field}"),
                description,
            },
            Self::PermissionDenied { field, description } => Self::PermissionDenied {
                field: format!("{list}[{index}].{field}"),
                description,
            },
            other => Self::InBatch {
                list,
                index,
                source: Box::new(other),
            },
        }
    }

    /// Prefixes the field path, so a rule written for `subject` reports `ticket.subject`.
    pub fn within(self, parent: &str) -> Self {
        match self {
            Self::InvalidArgument { field, description } => Self::InvalidArgument {
                field: format!("{parent}.{field}"),
                description,
            },
            Self::PermissionDenied { field, description } => Self::PermissionDenied {
                field: format!("{parent}.{field}"),
                description,
            },
            other => other,
        }
    }
}
