//! Time entries: minutes worked on a ticket on a given day (OneDesk's timesheets).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Most minutes in one entry: a day.
pub const MAX_MINUTES: i32 = 24 * 60;
/// Longest note, in characters.
pub const NOTE_MAX_CHARS: usize = 4_096;

/// Time logged on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeEntry {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: String,
    pub minutes: i32,
    pub work_date: NaiveDate,
    pub note: String,
    pub create_time: DateTime<Utc>,
}

impl TimeEntry {
    /// Resource name used in errors.
    pub const RESOURCE: &'static str = "time entry";
}

/// A validated entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTimeEntry {
    pub ticket_id: i64,
    pub minutes: i32,
    pub work_date: NaiveDate,
    pub note: String,
}

impl NewTimeEntry {
    /// Parses `LogTime`'s fields; errors name the field.
    pub fn parse(ticket_id: i64, minutes: i32, work_date: &str, note: String) -> Result<Self> {
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(Error::invalid(
                "minutes",
                format!("must be 1 to {MAX_MINUTES}, got {minutes}"),
            ));
        }
        let work_date = super::property::parse_iso_date(work_date).ok_or_else(|| {
            Error::invalid(
                "work_date",
                format!("must be a date as YYYY-MM-DD, got {work_date:?}"),
            )
        })?;
        if note.chars().count() > NOTE_MAX_CHARS {
            return Err(Error::invalid(
                "note",
                format!("must be at most {NOTE_MAX_CHARS} characters"),
            ));
        }
        Ok(Self {
            ticket_id,
            minutes,
            work_date,
            note,
        })
    }
}
