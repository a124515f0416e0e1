//! Shared commits on SQLite: writes queued behind the write gate join the transaction of the write ahead of
//! them, each under a savepoint of its own, and one COMMIT (one `fsync`) makes the whole group durable.
//!
//! SQLite runs one write transaction at a time and pays an `fsync` per commit (`synchronous=FULL`), so under
//! concurrent load most of a write's time was its own commit. Now a write that finishes while others wait at
//! the gate leaves the transaction open for them; the last one in (nobody waiting, 64 members, or 10 ms open)
//! commits for all. A request fails alone: its savepoint is rolled back and its queued history dropped, and
//! the others go on. None is answered before the COMMIT that makes it durable, and if that COMMIT fails every
//! member is told (UNAVAILABLE: nothing of theirs was kept). A request dropped halfway (its client went away)
//! leaves its savepoint to the next holder of the gate, which rolls it back. The cost: a member's answer waits
//! for the writes queued behind it (bounded by the limits above), and an idempotent retry of a request whose
//! group has not committed yet waits for that commit too. PostgreSQL commits concurrently and merges the
//! `fsync`s of concurrent commits itself, so it keeps one transaction per request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::ConnectionTrait;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::{Store, WriteTxn, idempotency, idempotency::Claim, outbox, rules};
use crate::domain::{Error, RequestKey};

/// A group takes no more members than this...
const MAX_MEMBERS: usize = 64;
/// ...and stays open no longer than this.
const MAX_OPEN: Duration = Duration::from_millis(10);
/// How long a member waits for its group's commit before it looks whether it must commit the group itself
/// (the writers that were queued behind it went away).
const COMMIT_RECHECK: Duration = Duration::from_millis(20);

/// The SQLite write gate: who holds it may write; an open group's transaction waits inside it.
#[derive(Default)]
pub(super) struct WriteGate {
    state: Arc<Mutex<GateState>>,
    /// Writers waiting for the gate: a member leaves its group open only for them.
    waiting: AtomicUsize,
    next_group: AtomicU64,
}

#[derive(Default)]
pub(super) struct GateState {
    open: Option<OpenGroup>,
}

/// What a group's members learn when it ends: `Err` carries why the COMMIT failed.
type Outcome = Option<Result<(), String>>;

struct OpenGroup {
    id: u64,
    txn: WriteTxn,
    /// The history and renders of the members so far (the member at work queues into `txn`'s own).
    members_pending: outbox::Pending,
    members: usize,
    opened: Instant,
    /// A member began and has not finished: if this is still set when someone else holds the gate, that
    /// member's request was dropped halfway and its savepoint must be rolled back.
    member_at_work: bool,
    outcome: watch::Sender<Outcome>,
}

const MEMBER_SAVEPOINT: &str = "ticketd_request";

/// Counts a writer as waiting until it holds the gate (or gives up).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WriteGate {
    /// Holds the gate with no group open: an open one is committed first (for writes that take a whole
    /// transaction of their own).
    pub(super) async fn lock_alone(&self) -> OwnedMutexGuard<GateState> {
        let mut state = self.lock().await;
        state.close_abandoned_member().await;
        if let Some(group) = state.open.take() {
            // The members learn the outcome; this writer goes on either way.
            let _ = group.commit().await;
        }
        state
    }

    async fn lock(&self) -> OwnedMutexGuard<GateState> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        Arc::clone(&self.state).lock_owned().await
    }
}

impl GateState {
    /// Rolls back the savepoint of a member whose request was dropped halfway, if there is one.
    async fn close_abandoned_member(&mut self) {
        let Some(group) = &mut self.open else {
            return;
        };
        if !group.member_at_work {
            return;
        }
        let rolled_back = end_member(&group.txn, false).await;
        drop(group.txn.take_pending());
        group.member_at_work = false;
        if let Err(error) = rolled_back {
            tracing::warn!(%error, "rolling back an abandoned request failed; the shared transaction is abandoned");
            if let Some(group) = self.open.take() {
                group.fail(format!("the shared transaction broke: {error}"));
            }
        }
    }
}

/// Ends a member's savepoint, keeping or undoing what it did.
async fn end_member(txn: &WriteTxn, keep: bool) -> Result<(), sea_orm::DbErr> {
    if !keep {
        txn.execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {MEMBER_SAVEPOINT}"))
            .await?;
    }
    txn.execute_unprepared(&format!("RELEASE SAVEPOINT {MEMBER_SAVEPOINT}"))
        .await?;
    Ok(())
}

impl OpenGroup {
    /// Commits the group and tells its members.
    async fn commit(mut self) -> Result<(), Error> {
        self.txn
            .put_pending(std::mem::take(&mut self.members_pending));
        let outcome = self.outcome;
        let committed = self.txn.commit().await;
        outcome.send_replace(Some(
            committed
                .as_ref()
                .map(|_| ())
                .map_err(|error| error.to_string()),
        ));
        committed
    }

    /// Rolls the group back and tells its members why.
    fn fail(self, why: String) {
        self.outcome.send_replace(Some(Err(why)));
        // Dropping the transaction rolls it back.
    }
}

impl Store {
    /// [`Store::write`] on SQLite: the request runs under a savepoint in a group's shared transaction and is
    /// answered after the group commits.
    pub(super) async fn write_shared<T>(
        &self,
        gate: &WriteGate,
        key: Option<&RequestKey>,
        work: impl AsyncFnOnce(&WriteTxn) -> Result<T, Error>,
    ) -> Result<T, Error>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let mut state = gate.lock().await;
        state.close_abandoned_member().await;
        if state.open.is_none() {
            let txn = self.begin_transaction(None).await?;
            let (outcome, _) = watch::channel(None);
            state.open = Some(OpenGroup {
                id: gate.next_group.fetch_add(1, Ordering::Relaxed),
                txn,
                members_pending: outbox::Pending::default(),
                members: 0,
                opened: Instant::now(),
                member_at_work: false,
                outcome,
            });
        }
        let Some(group) = state.open.as_mut() else {
            return Err(Error::internal("the shared transaction vanished"));
        };
        if let Err(error) = group
            .txn
            .execute_unprepared(&format!("SAVEPOINT {MEMBER_SAVEPOINT}"))
            .await
        {
            if let Some(group) = state.open.take() {
                group.fail(format!("the shared transaction broke: {error}"));
            }
            return Err(error.into());
        }
        group.member_at_work = true;
        let txn = &group.txn;
        let answer = async {
            if let Claim::Replay(saved) = idempotency::claim(txn, key).await? {
                return Ok(saved);
            }
            let result = work(txn).await?;
            rules::run(txn).await?;
            idempotency::complete(txn, key, &result).await?;
            Ok(result)
        }
        .await;
        let finished = end_member(&group.txn, answer.is_ok()).await;
        if let Err(error) = finished {
            if let Some(group) = state.open.take() {
                group.fail(format!("the shared transaction broke: {error}"));
            }
            return Err(error.into());
        }
        group.member_at_work = false;
        let member_pending = group.txn.take_pending();
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                // Nothing of this request stays; the group goes on without it.
                drop(member_pending);
                if group.members == 0 {
                    state.open = None;
                } else if gate.waiting.load(Ordering::Acquire) == 0
                    && let Some(group) = state.open.take()
                {
                    let _ = group.commit().await;
                }
                return Err(error);
            }
        };
        group.members_pending.absorb(member_pending);
        group.members += 1;
        let keep_open = gate.waiting.load(Ordering::Acquire) > 0
            && group.members < MAX_MEMBERS
            && group.opened.elapsed() < MAX_OPEN;
        if !keep_open {
            let Some(group) = state.open.take() else {
                return Err(Error::internal("the shared transaction vanished"));
            };
            group.commit().await?;
            return Ok(answer);
        }
        let id = group.id;
        let mut outcome = group.outcome.subscribe();
        drop(state);
        loop {
            let ended: Option<Result<Outcome, ()>> = tokio::select! {
                ended = outcome.wait_for(Option::is_some) => Some(ended.map(|outcome| outcome.clone()).map_err(|_| ())),
                () = tokio::time::sleep(COMMIT_RECHECK) => None,
            };
            match ended {
                Some(Ok(Some(Ok(())))) => return Ok(answer),
                Some(Ok(Some(Err(why)))) => {
                    return Err(Error::Unavailable(format!(
                        "the write was not kept, its shared commit failed: {why}"
                    )));
                }
                Some(Ok(None) | Err(())) => {
                    return Err(Error::Unavailable(
                        "the write was not kept, its shared transaction ended without a commit"
                            .into(),
                    ));
                }
                None => {
                    // The writers this one stayed open for went away: commit the group if nobody has.
                    let mut state = gate.lock().await;
                    state.close_abandoned_member().await;
                    if state.open.as_ref().is_some_and(|group| group.id == id)
                        && let Some(group) = state.open.take()
                    {
                        group.commit().await?;
                        return Ok(answer);
                    }
                }
            }
        }
    }
}
