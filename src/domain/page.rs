//! Keyset pagination: a page resumes strictly after the last row of the previous one, so rows inserted
//! while a client pages are never returned twice and deep pages cost the same as the first.

use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Larger requested sizes are lowered to this.
pub const MAX_PAGE_SIZE: u64 = 500;

/// Validates a requested page size: 0 means the default, above the maximum is clamped.
pub fn page_size(requested: i32) -> Result<u64> {
    match u64::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(Error::invalid(
            "page_size",
            format!("must not be negative, got {requested}"),
        )),
    }
}

/// Where the previous page ended: the sort key and id of its last row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort column's value as an integer (microseconds for times, the display order, the id).
    pub key: i64,
    /// Tie-breaker: the row's id.
    pub id: i64,
}

/// One page of a listing; `C` says where the next page starts.
#[derive(Debug, Clone)]
pub struct Page<T, C = Cursor> {
    pub items: Vec<T>,
    /// Set when more rows follow.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Builds a page from up to `size + 1` rows fetched in order: the extra row only says that more follow.
    pub fn from_overfetch(mut rows: Vec<T>, size: u64, cursor_of: impl Fn(&T) -> C) -> Self {
        let has_more = rows.len() as u64 > size;
        rows.truncate(size as usize);
        let next = if has_more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { items: rows, next }
    }
}
