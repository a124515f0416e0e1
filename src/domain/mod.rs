//! Plain Rust types and the rules on them: no tonic, no SQL.

pub mod access;
pub mod agent;
pub mod association;
pub mod card;

pub mod commands;
pub mod comment;
pub mod condition;
pub mod error;
pub mod escalation;
pub mod etag;
pub mod event;
pub mod field;
pub mod follower;
pub mod import;
pub mod page;
pub mod pipeline;
pub mod property;
pub mod queries;
pub mod rule;
pub mod search;
pub mod text;
pub mod ticket;
pub mod time_entry;
pub mod webhook;

pub use error::{Error, Result};

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision both databases store (microseconds), so that a value read back compares
/// equal to the one written — page cursors depend on it.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A client's `request_id` (AIP-155) with the request it came with, so retries can be recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The principal that sent the request: a request id is unique per caller (AIP-155), so one caller's id
    /// neither replays nor blocks another's.
    pub caller: String,
    pub request_id: String,
    /// The RPC's full name.
    pub operation: &'static str,
    /// Hash of the request without its `request_id`.
    pub fingerprint: String,
}

/// Who asks for a change, and the request id that makes retrying it safe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The caller's id, recorded as the author of history entries and comments; empty when unknown.
    pub actor_id: String,
    pub request: Option<RequestKey>,
    /// What the write asks of notifications and automations (ticket writes only; others leave the default).
    pub side_effects: event::SideEffects,
}
