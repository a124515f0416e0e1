//! Assertions on call results: success, a status code, field violations, and the order of event ids.

use std::fmt::Debug;

use tonic::{Code, Response, Status};
use tonic_types::StatusExt;

/// The response of a call that must succeed.
#[track_caller]
pub fn ok<T>(result: Result<Response<T>, Status>) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!(
            "expected OK, got {:?}: {:?} (details: {:?})",
            status.code(),
            status.message(),
            status.get_details_bad_request()
        ),
    }
}

/// The status of a call that must fail with `code`.
#[track_caller]
pub fn assert_code<T: Debug>(result: Result<Response<T>, Status>, code: Code) -> Status {
    match result {
        Ok(response) => panic!("expected {code:?}, got OK: {:?}", response.into_inner()),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "unexpected status code; message: {:?}",
                status.message()
            );
            status
        }
    }
}

/// A `google.rpc.BadRequest` field violation naming exactly `field`, which the message mentions too.
#[track_caller]
pub fn assert_field_violation(status: &Status, field: &str) {
    let bad_request = status.get_details_bad_request().unwrap_or_else(|| {
        panic!(
            "status {:?} {:?} carries no google.rpc.BadRequest details",
            status.code(),
            status.message()
        )
    });
    assert!(
        bad_request
            .field_violations
            .iter()
            .any(|v| v.field == field),
        "expected a field violation for {field:?}, got {:?} (message: {:?})",
        bad_request.field_violations,
        status.message()
    );
    assert!(
        status.message().contains(field),
        "status message {:?} does not mention the field {field:?}",
        status.message()
    );
}

/// INVALID_ARGUMENT with a field violation for `field`.
#[track_caller]
pub fn assert_invalid<T: Debug>(result: Result<Response<T>, Status>, field: &str) -> Status {
    let status = assert_code(result, Code::InvalidArgument);
    assert_field_violation(&status, field);
    status
}

/// Panics unless exactly one of concurrent creates of the same thing succeeded and every other one is
/// ALREADY_EXISTS.
#[track_caller]
pub fn assert_one_create_wins<T>(results: &[Result<T, Status>]) {
    let codes: Vec<Code> = results
        .iter()
        .map(|r| match r {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        })
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "exactly one create wins: {codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| *c == Code::Ok || *c == Code::AlreadyExists),
        "the others are ALREADY_EXISTS: {codes:?}"
    );
}

/// Panics unless the ids strictly increase (no repeat, no reordering).
#[track_caller]
pub fn assert_strictly_increasing(ids: &[i64], what: &str) {
    for (i, pair) in ids.windows(2).enumerate() {
        assert!(
            pair[1] > pair[0],
            "{what}: event ids must strictly increase, got {} then {} at positions {i}, {}",
            pair[0],
            pair[1],
            i + 1
        );
    }
}

/// PERMISSION_DENIED from the access policy, with a message naming `method` and saying `reason` (e.g. the missing
/// role or scope).
#[track_caller]
pub fn assert_method_denied<T: Debug>(
    result: Result<Response<T>, Status>,
    method: &str,
    reason: &str,
) -> Status {
    let status = assert_code(result, Code::PermissionDenied);
    let message = status.message();
    assert!(
        message.contains(method) && message.contains(reason),
        "PERMISSION_DENIED message {message:?} should name {method:?} and say {reason:?}"
    );
    status
}

/// PERMISSION_DENIED for one field of the request (a value the caller may not set or see), named by the
/// ErrorInfo's `field` metadata and by the message.
#[track_caller]
pub fn assert_field_denied<T: Debug>(result: Result<Response<T>, Status>, field: &str) -> Status {
    let status = assert_code(result, Code::PermissionDenied);
    let info = status.get_details_error_info().unwrap_or_else(|| {
        panic!(
            "PERMISSION_DENIED {:?} carries no google.rpc.ErrorInfo",
            status.message()
        )
    });
    assert_eq!(
        info.metadata.get("field").map(String::as_str),
        Some(field),
        "PERMISSION_DENIED must name the field {field:?}; message {:?}, ErrorInfo {info:?}",
        status.message()
    );
    assert!(
        status.message().contains(field),
        "message {:?} does not mention {field:?}",
        status.message()
    );
    status
}
