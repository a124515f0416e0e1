//! When a reader of the outbox may step over a position it has not seen (PostgreSQL).
//!
//! Positions come from a sequence and transactions commit in any order, so a reader at position 10 may see 12
//! committed while 11 is still in flight, or was drawn by a transaction that then rolled back and will never
//! appear. It must not take 12 before it knows which. The rule:
//!
//! - A writer has a transaction id before it draws a position (`outbox::flush` asks for `pg_current_xact_id()`
//!   before appending, unless the configuration call already did), and the sequence only grows. So if a read sees position `p` and not `g < p`, then `g` was
//!   drawn before `p`, hence before the read, by a transaction that had an id then and had not committed by the
//!   read's snapshot (`pg_current_snapshot()`, taken by the same statement as the positions).
//! - Those are the snapshot's running transactions, and those with ids at or above its `xmax`: PostgreSQL lists
//!   only running ids below `xmax` (`latestCompletedXid + 1`), not every id handed out. A fresh id drawn right
//!   after the read bounds them: every transaction that had an id at the snapshot has a smaller one.
//! - Once all of them have ended, a later read that still does not see `g` proves `g` rolled back: it is
//!   passed. Until then the reader stops before `g` and looks again when woken by a commit, or after a short
//!   wait (a rollback wakes nobody).
//!
//! So a reader takes positions in strictly increasing order, never passes one that could still commit, and
//! passes a hole left by a rollback as soon as the writers of that moment are gone. The cost: a hole waits for
//! every transaction that was writing when it was seen, so a long-running writer (an idle session holding a
//! transaction id) holds back a rolled-back position's readers until it ends; a hole that is filled by its own
//! commit waits only for that commit. Each hole seen costs the reader one transaction id (no WAL, no flush).
//! SQLite has one writer at a time and commits in position order: no holes to wait out.

/// What the gap rule needs of a PostgreSQL snapshot (`xmin:xmax:xip,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The first transaction id not yet assigned when the snapshot was taken.
    xmax: u64,
    /// Transactions running when the snapshot was taken, sorted.
    running: Vec<u64>,
}

impl Snapshot {
    /// Parses `pg_current_snapshot()`'s text form; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let (_xmin, xmax, running) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut running = running
            .split(',')
            .filter(|xid| !xid.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<u64>, _>>()
            .ok()?;
        running.sort_unstable();
        Some(Self {
            xmax: xmax.parse().ok()?,
            running,
        })
    }

    /// Whether transaction `xid`, known to have started before this snapshot, had ended when it was taken.
    fn has_ended(&self, xid: u64) -> bool {
        xid < self.xmax && self.running.binary_search(&xid).is_err()
    }
}

/// Holes seen by one reader and the writers that could still fill them.
#[derive(Debug, Default)]
pub struct GapGuard {
    watches: Vec<Watch>,
}

/// Positions below `seen_up_to` that a read did not see can only be filled by transactions that were running
/// in `snapshot` or had ids from its `xmax` up to `fresh_xid`.
#[derive(Debug)]
struct Watch {
    seen_up_to: i64,
    snapshot: Snapshot,
    fresh_xid: u64,
}

impl Watch {
    /// Whether every transaction that could fill a hole below `seen_up_to` had ended by `now`.
    fn writers_ended(&self, now: &Snapshot) -> bool {
        self.snapshot
            .running
            .iter()
            .copied()
            .chain(self.snapshot.xmax..self.fresh_xid)
            .all(|xid| now.has_ended(xid))
    }
}

impl GapGuard {
    /// How many of `positions` (ascending, all after `cursor`, read in the same statement as `snapshot`) may be
    /// taken now, in order; and, when it stops at a hole no watch covers yet, the position up to which a new
    /// watch ([`Self::watch`]) should be set.
    pub fn passable(
        &mut self,
        cursor: i64,
        positions: &[i64],
        snapshot: &Snapshot,
    ) -> (usize, Option<i64>) {
        let mut expected = cursor + 1;
        let mut taken = 0;
        for &position in positions {
            if position != expected && !self.hole_settled_before(position, snapshot) {
                break;
            }
            taken += 1;
            expected = position + 1;
        }
        let new_cursor = expected - 1;
        self.watches.retain(|watch| watch.seen_up_to > new_cursor);
        let unwatched = positions
            .get(taken..)
            .and_then(<[i64]>::last)
            .copied()
            .filter(|&highest| !self.watches.iter().any(|watch| watch.seen_up_to >= highest));
        (taken, unwatched)
    }

    /// Watches the holes below `seen_up_to`, seen in `snapshot`; `fresh_xid` is a transaction id drawn after it.
    pub fn watch(&mut self, seen_up_to: i64, snapshot: Snapshot, fresh_xid: u64) {
        self.watches.push(Watch {
            seen_up_to,
            snapshot,
            fresh_xid,
        });
    }

    /// Whether the reader is held at a hole (and should look again soon even if no commit wakes it).
    pub fn holding(&self) -> bool {
        !self.watches.is_empty()
    }

    /// Whether every position below `position` that has not been seen will never be.
    fn hole_settled_before(&self, position: i64, now: &Snapshot) -> bool {
        self.watches
            .iter()
            .any(|watch| watch.seen_up_to >= position && watch.writers_ended(now))
    }
}

/// The transactions not yet ended in `snapshot` (with `fresh_xid` drawn after it) have all ended by `now`.
pub fn all_ended(snapshot: &Snapshot, fresh_xid: u64, now: &Snapshot) -> bool {
    Watch {
        seen_up_to: 0,
        snapshot: snapshot.clone(),
        fresh_xid,
    }
    .writers_ended(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(text: &str) -> Snapshot {
        Snapshot::parse(text).expect("a snapshot")
    }

    #[test]
    fn snapshots_parse_with_and_without_running_transactions() {
        assert_eq!(
            snapshot("10:20:15,11"),
            Snapshot {
                xmax: 20,
                running: vec![11, 15]
            }
        );
        assert_eq!(snapshot("7:7:").running, Vec::<u64>::new());
        assert_eq!(Snapshot::parse("7:7"), None);
        assert_eq!(Snapshot::parse("a:b:"), None);
    }

    /// Reads `positions` after `cursor` in `snapshot` (its text form); a new watch gets `fresh_xid`.
    fn read(
        guard: &mut GapGuard,
        cursor: i64,
        positions: &[i64],
        text: &str,
        fresh_xid: u64,
    ) -> usize {
        let snapshot = snapshot(text);
        let (taken, unwatched) = guard.passable(cursor, positions, &snapshot);
        if let Some(seen_up_to) = unwatched {
            guard.watch(seen_up_to, snapshot, fresh_xid);
        }
        taken
    }

    #[test]
    fn contiguous_positions_are_taken_at_once() {
        let mut guard = GapGuard::default();
        assert_eq!(read(&mut guard, 10, &[11, 12, 13], "5:9:5", 9), 3);
        assert!(!guard.holding());
    }

    #[test]
    fn a_hole_holds_the_reader_until_its_writers_have_ended() {
        let mut guard = GapGuard::default();
        // 11 is missing while transactions 100 and 101 run: either could still commit it.
        assert_eq!(read(&mut guard, 10, &[12, 13], "100:102:100,101", 102), 0);
        assert!(guard.holding());
        // 101 ended, 100 still runs: held.
        assert_eq!(read(&mut guard, 10, &[12, 13], "100:103:100,102", 103), 0);
        // Both ended and 11 still is not there: it rolled back, and the reader passes it.
        assert_eq!(read(&mut guard, 10, &[12, 13], "102:104:102,103", 104), 2);
        assert!(!guard.holding());
    }

    #[test]
    fn a_writer_at_or_above_xmax_holds_the_hole_too() {
        let mut guard = GapGuard::default();
        // 105 had an id but 101..=104 had not completed, so the snapshot's xmax is 101 and 105 is not listed;
        // the fresh id 106 says ids below it were handed out.
        assert_eq!(read(&mut guard, 10, &[12], "101:101:", 106), 0);
        // 101..=104 ended, 105 still runs.
        assert_eq!(read(&mut guard, 10, &[12], "105:107:105", 107), 0);
        assert_eq!(read(&mut guard, 10, &[12], "107:107:", 107), 1);
    }

    #[test]
    fn a_filled_hole_is_taken_in_order() {
        let mut guard = GapGuard::default();
        assert_eq!(read(&mut guard, 10, &[12], "100:101:100", 101), 0);
        assert_eq!(read(&mut guard, 10, &[11, 12], "101:101:", 101), 2);
        assert!(!guard.holding());
    }

    #[test]
    fn writers_that_started_after_the_hole_was_seen_do_not_hold_it() {
        let mut guard = GapGuard::default();
        assert_eq!(read(&mut guard, 10, &[12], "100:101:100", 101), 0);
        // 100 ended; 105 started later and cannot have drawn 11.
        assert_eq!(read(&mut guard, 10, &[12, 14], "105:106:105", 106), 1);
        // 13 is a new hole, seen while 105 runs.
        assert!(guard.holding());
        assert_eq!(read(&mut guard, 12, &[14], "105:107:105,106", 107), 0);
        assert_eq!(read(&mut guard, 12, &[14], "107:107:", 107), 1);
        assert!(!guard.holding());
    }

    #[test]
    fn a_hole_beyond_what_a_watch_saw_needs_a_watch_of_its_own() {
        let mut guard = GapGuard::default();
        assert_eq!(read(&mut guard, 0, &[2], "50:51:50", 51), 0);
        // 50 ended; 2 is taken, but 4 was not seen by the first watch: 52 could have drawn 3.
        assert_eq!(read(&mut guard, 0, &[2, 4], "52:53:52", 53), 1);
        assert_eq!(read(&mut guard, 2, &[4], "53:53:", 53), 1);
    }
}
