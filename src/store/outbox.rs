//! The outbox: history entries and card renders, appended by each write transaction just before it commits,
//! and read back in position order by the tailer of every replica (and by streams catching up).
//!
//! Positions come from sequences (`ticket_events.event_id`, `card_renders.position`) and PostgreSQL
//! transactions commit in any order, so position 12 can become visible before 11. Readers therefore never take
//! a position above a hole that a running transaction could still fill: the tailer follows the rule in
//! [`super::gaps`] and publishes the position up to which everything is final, the [`OutboxHorizon`]; streams
//! read from the database only up to it, new streams start at it, and webhook workers claim only deliveries of
//! events below it (so one ticket's deliveries keep their order). Writers take no lock for it: concurrent
//! commits share PostgreSQL's group commit, and replicas add throughput. The cost is on the reading side: a
//! hole is waited out (usually for the commit that fills it, a few milliseconds), and the tailer reads the
//! positions before the rows. Before migration `m20261129_000013` a transaction-level advisory lock made
//! positions commit in order instead, which capped the whole deployment at one commit at a time
//! (BENCHMARKS.md). SQLite's write
//! gate serialises writers, so its positions commit in order. After a commit, the process's announcer sends
//! one `NOTIFY` for whatever its commits appended meanwhile, which wakes every replica's tailer
//! ([`Store::announce`] says why not from inside the transaction); a poll covers an announcement lost to a
//! crash.
//!
//! Each event also records the side effects its write chose (`SideEffects`), settled here at the append
//! rather than by the writes themselves: whether a write "creates a closed ticket" is known only once the
//! ticket's stage is placed, deep in the write, and every event of that ticket in the write (CREATED and the
//! links made with it) must agree — a notifier that stayed quiet about the CREATED event must not then
//! announce its links. Settling in one place, from what the transaction remembered about its creations,
//! keeps every path that queues events (API writes, escalation, imports, stage restates) to one rule, and
//! no event is ever stored as `UNSPECIFIED`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use serde::Serialize;
use std::sync::{
    Arc, LazyLock,
    atomic::{AtomicBool, AtomicI64, Ordering},
};
use tokio::sync::Notify;

use super::{
    Store, WriteTxn, cards,
    entities::{card_render, ticket_event},
    from_json,
    gaps::{self, Snapshot},
    tickets, to_json, webhooks,
};
use crate::domain::{
    Error,
    card::CardRender,
    event::{EventDetail, EventKind, FieldChange, NewEvent, SideEffects, TicketEvent},
    now,
    pipeline::TicketState,
    ticket::Ticket,
};

/// PostgreSQL `NOTIFY` channel raised by every commit that appends to the outbox.
pub const OUTBOX_CHANNEL: &str = "ticketd_outbox";

/// A history entry waiting for its transaction's commit.
struct QueuedEvent {
    actor_id: String,
    /// What the write asked for; settled at the append (see the module doc).
    asked: SideEffects,
    event: NewEvent,
    /// For a rule's change: the index (in [`Pending::events`]) of the event that set the rule off.
    cause: Option<usize>,
}

/// A history entry as appended, for what enqueues work from it (webhook deliveries).
pub(super) struct AppendedEvent<'a> {
    pub event_id: i64,
    pub ticket_id: i64,
    pub kind: EventKind,
    /// As settled (never `Unspecified`).
    pub side_effects: SideEffects,
    /// The ticket after the transaction's changes.
    pub ticket: Option<&'a Ticket>,
    pub detail: Option<&'a EventDetail>,
}

/// Entries a transaction will append when it commits.
#[derive(Default)]
pub(super) struct Pending {
    events: Vec<QueuedEvent>,
    renders: Vec<CardRender>,
    /// Tickets as this transaction last wrote them: their events' snapshots need no read-back.
    written: BTreeMap<i64, Ticket>,
    /// Tickets this transaction created: no card can be bound to them yet.
    created: BTreeSet<i64>,
    /// Tickets this transaction locked and found with no card bound: none can be until it ends.
    without_cards: BTreeSet<i64>,
    /// Tickets this transaction created directly in a CLOSED stage: their events notify nobody unless the
    /// write asked for it ([`SideEffects::settle`]).
    created_closed: BTreeSet<i64>,
    /// Set while a rule's actions run: the events they queue name it as their cause.
    cause: Option<usize>,
    /// Deliveries rules asked for (`send_webhook`): (webhook id, index of the event to deliver).
    forced_deliveries: Vec<(i64, usize)>,
    /// Events before this index have been through the rules.
    rules_ran: usize,
}

impl Pending {
    /// Takes in what one more request of a shared commit queued, after its rules ran. Its events are settled
    /// now, against what that request created: a ticket another member created closed is not this one's
    /// creation. What it may have changed about a ticket another member remembered (a card bound, a comment)
    /// is read back at the append instead of taken from memory.
    pub(super) fn absorb(&mut self, member: Pending) {
        let offset = self.events.len();
        let touched: BTreeSet<i64> = member
            .events
            .iter()
            .map(|queued| queued.event.ticket_id)
            .chain(member.renders.iter().map(|render| render.ticket_id))
            .collect();
        for ticket_id in &touched {
            if !member.written.contains_key(ticket_id) {
                self.written.remove(ticket_id);
            }
            if !member.created.contains(ticket_id) {
                self.created.remove(ticket_id);
            }
            if !member.without_cards.contains(ticket_id) {
                self.without_cards.remove(ticket_id);
            }
        }
        self.events
            .extend(member.events.into_iter().map(|mut queued| {
                queued.asked = queued
                    .asked
                    .settle(member.created_closed.contains(&queued.event.ticket_id));
                queued.cause = queued.cause.map(|cause| cause + offset);
                queued
            }));
        self.renders.extend(member.renders);
        self.written.extend(member.written);
        self.created.extend(member.created);
        self.without_cards.extend(member.without_cards);
        self.forced_deliveries.extend(
            member
                .forced_deliveries
                .into_iter()
                .map(|(webhook_id, event)| (webhook_id, event + offset)),
        );
        self.rules_ran = self.events.len();
    }
}

/// How a transaction came to hold a ticket it remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// An existing ticket, changed.
    Changed,
    /// A new ticket, placed in a stage of this state.
    Created(TicketState),
}

/// What a commit appended: the tailer reads only the tables that got rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    pub events: bool,
    pub renders: bool,
}

impl Appended {
    /// Both kinds: for wake-ups that do not say what was appended (polls, reconnects, older replicas).
    pub const ALL: Self = Self {
        events: true,
        renders: true,
    };

    pub fn any(self) -> bool {
        self.events || self.renders
    }

    /// The `NOTIFY` payload: the sending process, then `e` and/or `r`.
    pub(crate) fn payload(self, sender: &str) -> String {
        let events = if self.events { "e" } else { "" };
        let renders = if self.renders { "r" } else { "" };
        format!("{sender}:{events}{renders}")
    }
}

/// Wakes the outbox tailer of this process, and its announcer, which tells the other replicas.
pub struct OutboxSignal {
    notify: Notify,
    events: AtomicBool,
    renders: AtomicBool,
    announce: Notify,
    unannounced_events: AtomicBool,
    unannounced_renders: AtomicBool,
    /// Names this process in its notifications, so its listener can ignore the echo of its own commits
    /// (the commit already woke the tailer directly) instead of waking it a second time for nothing.
    sender: String,
}

impl Default for OutboxSignal {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            events: AtomicBool::new(false),
            renders: AtomicBool::new(false),
            announce: Notify::new(),
            unannounced_events: AtomicBool::new(false),
            unannounced_renders: AtomicBool::new(false),
            sender: process_nonce(),
        }
    }
}

/// A value no other process (replica) shares: every pod's server may be pid 1, so the standard library's
/// randomly seeded hasher supplies the randomness, mixed with the start time.
fn process_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

impl OutboxSignal {
    /// Something was appended.
    pub fn notify(&self, appended: Appended) {
        if appended.events {
            self.events.store(true, Ordering::Release);
        }
        if appended.renders {
            self.renders.store(true, Ordering::Release);
        }
        // notify_one keeps a permit when the tailer is busy, so a wake-up is never lost.
        self.notify.notify_one();
    }

    /// A commit of this process appended to the outbox: wakes the tailer, and the announcer for the others.
    pub fn committed(&self, appended: Appended) {
        self.notify(appended);
        if appended.events {
            self.unannounced_events.store(true, Ordering::Release);
        }
        if appended.renders {
            self.unannounced_renders.store(true, Ordering::Release);
        }
        self.announce.notify_one();
    }

    /// Waits until a commit of this process has something to announce.
    pub async fn to_announce(&self) {
        self.announce.notified().await;
    }

    /// What this process appended since the last call, to announce.
    pub fn take_unannounced(&self) -> Appended {
        Appended {
            events: self.unannounced_events.swap(false, Ordering::AcqRel),
            renders: self.unannounced_renders.swap(false, Ordering::AcqRel),
        }
    }

    /// The payload announcing `appended` as this process.
    pub fn announcement(&self, appended: Appended) -> String {
        appended.payload(&self.sender)
    }

    /// A notification from the PostgreSQL channel: the echo of this process's own commit is ignored; a
    /// payload this version does not understand wakes the tailer for everything.
    pub fn notify_from_channel(&self, payload: &str) {
        match payload.split_once(':') {
            Some((sender, _)) if sender == self.sender => {}
            Some((_, kinds)) => self.notify(Appended {
                events: kinds.contains('e'),
                renders: kinds.contains('r'),
            }),
            None => self.notify(Appended::ALL),
        }
    }

    /// Waits for the next append.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// What was appended since the last call.
    pub fn take_appended(&self) -> Appended {
        Appended {
            events: self.events.swap(false, Ordering::AcqRel),
            renders: self.renders.swap(false, Ordering::AcqRel),
        }
    }
}

impl WriteTxn {
    /// Queues a history entry for this transaction's commit, by `actor_id` with the side effects its write
    /// `asked` for.
    pub(super) fn push_event(&self, actor_id: &str, asked: SideEffects, event: NewEvent) {
        if let Ok(mut pending) = self.outbox.lock() {
            let cause = pending.cause;
            pending.events.push(QueuedEvent {
                actor_id: actor_id.to_owned(),
                asked,
                event,
                cause,
            });
        }
    }

    /// Queues a card render for this transaction's commit.
    pub(super) fn push_render(&self, render: CardRender) {
        if let Ok(mut pending) = self.outbox.lock() {
            // A card of this ticket exists now, whatever an earlier look found.
            pending.without_cards.remove(&render.ticket_id);
            pending.renders.push(render);
        }
    }

    /// Remembers a ticket exactly as this transaction wrote it (row and properties), so its events'
    /// snapshots are taken from memory. Only for writes that leave nothing else to change in that ticket.
    pub(super) fn remember_written(&self, ticket: &Ticket, written: Written) {
        if let Ok(mut pending) = self.outbox.lock() {
            if let Written::Created(state) = written {
                pending.created.insert(ticket.id);
                if state == TicketState::Closed {
                    pending.created_closed.insert(ticket.id);
                }
            }
            pending.written.insert(ticket.id, ticket.clone());
        }
    }

    /// Remembers that no card is bound to a ticket this transaction holds locked.
    pub(super) fn remember_without_cards(&self, ticket_id: i64) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.without_cards.insert(ticket_id);
        }
    }

    /// Runs `work` with every event it queues naming the queued event at `cause` as its cause.
    pub(super) async fn with_cause<T>(
        &self,
        cause: usize,
        work: impl AsyncFnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.set_cause(Some(cause));
        let result = work().await;
        self.set_cause(None);
        result
    }

    fn set_cause(&self, cause: Option<usize>) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.cause = cause;
        }
    }

    /// Asks for the queued event at `event` to be delivered to webhook `webhook_id` whatever it subscribes to.
    pub(super) fn force_delivery(&self, webhook_id: i64, event: usize) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.forced_deliveries.push((webhook_id, event));
        }
    }

    /// Events before this index have been through the rules.
    pub(super) fn rules_ran(&self) -> usize {
        self.outbox.lock().map_or(0, |pending| pending.rules_ran)
    }

    pub(super) fn rules_ran_until(&self, index: usize) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.rules_ran = index;
        }
    }

    /// `ticket`, or the newer version of it this transaction wrote since (a rule's change).
    pub(super) fn latest_written(&self, ticket: Ticket) -> Ticket {
        let Ok(pending) = self.outbox.lock() else {
            return ticket;
        };
        match pending.written.get(&ticket.id) {
            Some(newer) if newer.version > ticket.version => newer.clone(),
            _ => ticket,
        }
    }

    /// How many events are queued: a mark for [`Self::queued_since`].
    pub(super) fn queued_len(&self) -> usize {
        self.outbox.lock().map_or(0, |pending| pending.events.len())
    }

    /// The cause set by [`Self::with_cause`], while its work runs.
    pub(super) fn current_cause(&self) -> Option<usize> {
        self.outbox.lock().ok().and_then(|pending| pending.cause)
    }

    /// What rules look at: the events queued from index `mark` on, with whether their ticket was created in
    /// a CLOSED stage.
    pub(super) fn queued_since(&self, mark: usize) -> Vec<Queued> {
        let Ok(pending) = self.outbox.lock() else {
            return Vec::new();
        };
        pending
            .events
            .iter()
            .enumerate()
            .skip(mark)
            .map(|(index, queued)| Queued {
                index,
                ticket_id: queued.event.ticket_id,
                kind: queued.event.kind,
                asked: queued.asked,
                created_closed: pending.created_closed.contains(&queued.event.ticket_id),
                changes: queued.event.changes.clone(),
            })
            .collect()
    }

    /// Where the queue stands for `ticket_id`, to go back to if what follows is rolled back to a savepoint.
    pub(super) fn outbox_mark(&self, ticket_id: i64) -> OutboxMark {
        let Ok(pending) = self.outbox.lock() else {
            return OutboxMark::default();
        };
        OutboxMark {
            events: pending.events.len(),
            forced_deliveries: pending.forced_deliveries.len(),
            renders: pending.renders.len(),
            ticket_id,
            written: pending.written.get(&ticket_id).cloned(),
        }
    }

    /// Forgets what was queued after `mark`, and the ticket as written since, after a rollback to a savepoint.
    pub(super) fn rewind(&self, mark: OutboxMark) {
        if let Ok(mut pending) = self.outbox.lock() {
            pending.events.truncate(mark.events);
            pending.forced_deliveries.truncate(mark.forced_deliveries);
            pending.renders.truncate(mark.renders);
            match mark.written {
                Some(ticket) => pending.written.insert(mark.ticket_id, ticket),
                None => pending.written.remove(&mark.ticket_id),
            };
        }
    }

    pub(super) fn take_pending(&self) -> Pending {
        self.outbox
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }

    /// Replaces what this transaction will append (a shared commit hands it its members' entries).
    pub(super) fn put_pending(&self, entries: Pending) {
        if let Ok(mut pending) = self.outbox.lock() {
            *pending = entries;
        }
    }
}

/// A queued event as rules see it.
pub(super) struct Queued {
    pub index: usize,
    pub ticket_id: i64,
    pub kind: EventKind,
    pub asked: SideEffects,
    pub created_closed: bool,
    pub changes: Vec<crate::domain::event::FieldChange>,
}

/// A position in a transaction's queue ([`WriteTxn::outbox_mark`]).
#[derive(Default)]
pub(super) struct OutboxMark {
    pub events: usize,
    forced_deliveries: usize,
    renders: usize,
    ticket_id: i64,
    written: Option<Ticket>,
}

/// Appends what `txn` queued; returns what was appended.
pub(super) async fn flush(txn: &WriteTxn) -> Result<Appended, Error> {
    let Pending {
        events,
        mut renders,
        mut written,
        created,
        without_cards,
        created_closed,
        cause: _,
        forced_deliveries,
        rules_ran: _,
    } = txn.take_pending();
    if events.is_empty() && renders.is_empty() {
        return Ok(Appended::default());
    }
    let changed: BTreeSet<i64> = events.iter().map(|queued| queued.event.ticket_id).collect();
    let unread: Vec<i64> = changed
        .iter()
        .copied()
        .filter(|id| !written.contains_key(id))
        .collect();
    let mut snapshots: Vec<Ticket> = changed.iter().filter_map(|id| written.remove(id)).collect();
    snapshots.extend(tickets::load_many(&**txn, &unread).await?);
    let may_have_cards: Vec<&Ticket> = snapshots
        .iter()
        .filter(|ticket| !created.contains(&ticket.id) && !without_cards.contains(&ticket.id))
        .collect();
    let followed = cards::follow_tickets(txn, &may_have_cards).await?;
    renders.extend(followed);

    let appended = Appended {
        events: !events.is_empty(),
        renders: !renders.is_empty(),
    };
    if txn.get_database_backend() == DbBackend::Postgres
        && !txn.has_xid.load(std::sync::atomic::Ordering::Relaxed)
    {
        // The transaction has its id before it draws a position: readers rely on that to know which
        // transactions could still fill a hole (`super::gaps`).
        txn.execute_unprepared("SELECT pg_current_xact_id()")
            .await?;
    }
    let created = now();
    let by_id: BTreeMap<i64, &Ticket> =
        snapshots.iter().map(|ticket| (ticket.id, ticket)).collect();
    let settled: Vec<SideEffects> = events
        .iter()
        .map(|queued| {
            queued
                .asked
                .settle(created_closed.contains(&queued.event.ticket_id))
        })
        .collect();
    // Appended in rounds: an event naming a cause needs the cause's id, which the database draws, so a round
    // ends before the first event whose cause is in it. Without rules that is one round.
    let mut event_ids: Vec<i64> = Vec::with_capacity(events.len());
    let mut round: Vec<EventRow> = Vec::new();
    for (index, queued) in events.iter().enumerate() {
        if queued.cause.is_some_and(|cause| cause >= event_ids.len()) {
            event_ids.extend(append_round(txn, &round, created).await?);
            round.clear();
        }
        let settled = settled[index];
        debug_assert!(queued.cause.is_none_or(|cause| cause < index));
        round.push(EventRow {
            ticket_id: queued.event.ticket_id,
            kind: queued.event.kind.as_str(),
            actor_id: &queued.actor_id,
            changes: &queued.event.changes,
            detail: queued.event.detail.as_ref(),
            ticket: by_id.get(&queued.event.ticket_id).copied(),
            notify: settled.notify.as_str(),
            skip_automations: settled.skip_automations,
            cause_event_id: queued.cause.and_then(|cause| event_ids.get(cause).copied()),
        });
    }
    event_ids.extend(append_round(txn, &round, created).await?);
    let appended_events: Vec<AppendedEvent> = events
        .iter()
        .zip(&event_ids)
        .zip(&settled)
        .map(|((queued, &event_id), &side_effects)| AppendedEvent {
            event_id,
            ticket_id: queued.event.ticket_id,
            kind: queued.event.kind,
            side_effects,
            ticket: by_id.get(&queued.event.ticket_id).copied(),
            detail: queued.event.detail.as_ref(),
        })
        .collect();
    let forced: Vec<(i64, i64)> = forced_deliveries
        .iter()
        .filter_map(|&(webhook_id, index)| Some((webhook_id, *event_ids.get(index)?)))
        .collect();
    webhooks::enqueue(txn, &appended_events, &forced).await?;
    let renders = renders
        .into_iter()
        .map(|render| {
            Ok(card_render::ActiveModel {
                position: NotSet,
                card_id: Set(render.card_id),
                version: Set(render.version),
                ticket_id: Set(render.ticket_id),
                group_id: Set(render.group_id),
                view: Set(render.view),
                texts: Set(to_json(&render.texts)?),
                create_time: Set(created),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if !renders.is_empty() {
        card_render::Entity::insert_many(renders)
            .exec_without_returning(&**txn)
            .await?;
    }
    Ok(appended)
}

/// One `ticket_events` row as the append statements read it, serialised straight from the domain's values.
#[derive(Serialize)]
struct EventRow<'a> {
    ticket_id: i64,
    kind: &'static str,
    actor_id: &'a str,
    changes: &'a [FieldChange],
    detail: Option<&'a EventDetail>,
    ticket: Option<&'a Ticket>,
    notify: &'static str,
    skip_automations: bool,
    cause_event_id: Option<i64>,
}

/// The `ticket_events` columns an append takes from its JSON rows, with their PostgreSQL types: the one list
/// both append statements are built from. `appended_columns_are_the_tables_and_the_rows` keeps it equal to
/// the entity's columns and to [`EventRow`]'s fields, so a column added to one cannot be left out of another.
const APPENDED_COLUMNS: [(&str, &str); 9] = [
    ("ticket_id", "bigint"),
    ("kind", "text"),
    ("actor_id", "text"),
    ("changes", "jsonb"),
    ("detail", "jsonb"),
    ("ticket", "jsonb"),
    ("notify", "text"),
    ("skip_automations", "boolean"),
    ("cause_event_id", "bigint"),
];
/// Bound on its own (one value for the whole round); `event_id` is drawn by the database.
const APPEND_TIME_COLUMN: &str = "create_time";

/// Appends a round of events as one JSON array: one fixed statement whatever the number of rows, so neither the
/// ORM's query building nor a `serde_json::Value` of each snapshot sits between the rows and the database (the
/// outbox append was half of a create's instructions). JSON columns stay JSON: objects and arrays nest as they
/// are, and a null becomes NULL. SQLite's `json_each` rows are taken in array order, so ids are drawn in it.
fn append_statement(backend: DbBackend) -> &'static str {
    static POSTGRES: LazyLock<String> = LazyLock::new(|| {
        let names = APPENDED_COLUMNS.map(|(name, _)| name);
        let selected = names.map(|name| format!("r.{name}"));
        let record = APPENDED_COLUMNS.map(|(name, kind)| format!("{name} {kind}"));
        format!(
            "INSERT INTO ticket_events ({}, {APPEND_TIME_COLUMN}) SELECT {}, $2 \
             FROM jsonb_to_recordset($1::jsonb) AS r({}) RETURNING event_id",
            names.join(", "),
            selected.join(", "),
            record.join(", ")
        )
    });
    static SQLITE: LazyLock<String> = LazyLock::new(|| {
        let names = APPENDED_COLUMNS.map(|(name, _)| name);
        let selected = names.map(|name| format!("json_extract(value, '$.{name}')"));
        format!(
            "INSERT INTO ticket_events ({}, {APPEND_TIME_COLUMN}) SELECT {}, ?2 \
             FROM json_each(?1) ORDER BY key RETURNING event_id",
            names.join(", "),
            selected.join(", ")
        )
    });
    match backend {
        DbBackend::Postgres => &POSTGRES,
        _ => &SQLITE,
    }
}

/// Inserts one round of events; their ids in the order given (ids are drawn row by row, in order, so sorting
/// the returned keys restores it whatever order the database returns them in).
async fn append_round(
    txn: &WriteTxn,
    rows: &[EventRow<'_>],
    created: DateTime<Utc>,
) -> Result<Vec<i64>, Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let backend = txn.get_database_backend();
    let sql = append_statement(backend);
    let rows = serde_json::to_string(rows).map_err(Error::internal)?;
    let appended = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [rows.into(), created.into()],
        ))
        .await?;
    let mut ids = appended
        .iter()
        .map(|row| row.try_get::<i64>("", "event_id"))
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// A committed card render with its outbox position.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionedRender {
    pub position: i64,
    pub render: CardRender,
}

/// The two outbox tables, each read in position order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxTable {
    Events,
    Renders,
}

impl OutboxTable {
    const fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            Self::Events => ("ticket_events", "event_id"),
            Self::Renders => ("card_renders", "position"),
        }
    }
}

/// Up to where this process's tailer has published each outbox table: every position at or below it is final
/// (committed, or never will be). Streams read the database only up to it and start from it; webhook workers
/// claim only deliveries of events at or below it.
#[derive(Debug, Default)]
pub struct OutboxHorizon {
    events: AtomicI64,
    renders: AtomicI64,
    /// The highest event id whose commit enqueued webhook deliveries in this process.
    deliveries_enqueued: AtomicI64,
}

impl OutboxHorizon {
    pub fn events(&self) -> i64 {
        self.events.load(Ordering::Acquire)
    }

    pub fn renders(&self) -> i64 {
        self.renders.load(Ordering::Acquire)
    }

    /// Moves the horizon of `table` up to `position`; returns whether webhook deliveries enqueued by this
    /// process became claimable.
    pub fn advance(&self, table: OutboxTable, position: i64) -> bool {
        match table {
            OutboxTable::Events => {
                // SeqCst here and in `deliveries_enqueued_up_to`: of a commit recording its deliveries and the
                // tailer passing them, at least one sees the other, so a wake-up is never lost.
                let before = self.events.fetch_max(position, Ordering::SeqCst);
                let enqueued = self.deliveries_enqueued.load(Ordering::SeqCst);
                // Deliveries above the old horizon may lie below the new one (only the newest is recorded).
                position > before && enqueued > before
            }
            OutboxTable::Renders => {
                self.renders.fetch_max(position, Ordering::AcqRel);
                false
            }
        }
    }

    /// Records that a commit enqueued deliveries of events up to `event_id`; returns whether they are claimable
    /// already (the tailer passed them before this was recorded).
    pub(super) fn deliveries_enqueued_up_to(&self, event_id: i64) -> bool {
        self.deliveries_enqueued
            .fetch_max(event_id, Ordering::SeqCst);
        self.events.load(Ordering::SeqCst) >= event_id
    }
}

/// Positions after a cursor, as one statement saw them.
#[derive(Debug)]
pub struct ProbedPositions {
    pub positions: Vec<i64>,
    /// The statement's snapshot; `None` on SQLite, whose positions commit in order.
    pub snapshot: Option<Snapshot>,
}

impl Store {
    /// Tells every replica's tailer (PostgreSQL `NOTIFY`, in a statement of its own) what this process
    /// appended. Not from the writing transactions: a transaction that notifies holds PostgreSQL's
    /// notification queue lock from its commit's start to its end, so every notifying commit of the cluster
    /// would queue behind the one before — the global lock the outbox no longer takes.
    pub async fn announce(&self, appended: Appended) -> Result<(), Error> {
        let payload = self.signal.announcement(appended);
        self.db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [OUTBOX_CHANNEL.into(), payload.into()],
            ))
            .await?;
        Ok(())
    }

    /// The newest committed history entry's id (0 when there is none). Entries below it may still be
    /// committing; readers go by the horizon ([`Self::outbox_horizon`]) instead.
    pub async fn last_event_id(&self) -> Result<i64, Error> {
        let last: Option<i64> = ticket_event::Entity::find()
            .select_only()
            .column_as(ticket_event::Column::EventId.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok(last.unwrap_or(0))
    }

    /// This process's outbox horizon.
    pub fn outbox_horizon(&self) -> Arc<OutboxHorizon> {
        Arc::clone(&self.horizon)
    }

    /// Where a tailer starting now may begin reading each table (events, renders): the newest positions,
    /// once every transaction that could still commit a position below them has ended.
    pub async fn outbox_start(&self) -> Result<(i64, i64), Error> {
        // One statement, so that the snapshot is the one the newest positions were read in.
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.backend(),
                format!(
                    "SELECT {snapshot} AS snapshot, \
                     (SELECT COALESCE(MAX(event_id), 0) FROM ticket_events) AS events, \
                     (SELECT COALESCE(MAX(position), 0) FROM card_renders) AS renders",
                    snapshot = match self.backend() {
                        DbBackend::Postgres => "pg_current_snapshot()::text",
                        _ => "''",
                    }
                ),
            ))
            .await?
            .ok_or_else(|| Error::internal("the outbox start returned no row"))?;
        let start = (
            row.try_get::<i64>("", "events")?,
            row.try_get::<i64>("", "renders")?,
        );
        let Some(snapshot) = Snapshot::parse(&row.try_get::<String>("", "snapshot")?) else {
            return Ok(start);
        };
        let fresh_xid = self.fresh_xid().await?;
        let started = std::time::Instant::now();
        let mut warned = std::time::Duration::ZERO;
        loop {
            let now = self.current_snapshot().await?;
            if gaps::all_ended(&snapshot, fresh_xid, &now) {
                return Ok(start);
            }
            if started.elapsed() >= warned + std::time::Duration::from_secs(10) {
                warned = started.elapsed();
                tracing::warn!(
                    waited_secs = warned.as_secs(),
                    ?snapshot,
                    "the outbox tailer waits for the transactions that were writing when it started"
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A transaction id drawn now: larger than that of every transaction that had one before (see
    /// [`super::gaps`]). The transaction writes nothing, so its commit costs no WAL flush.
    pub async fn fresh_xid(&self) -> Result<u64, Error> {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_current_xact_id()::text AS xid",
            ))
            .await?
            .ok_or_else(|| Error::internal("pg_current_xact_id returned no row"))?;
        let text: String = row.try_get("", "xid")?;
        text.parse()
            .map_err(|_| Error::internal(format!("unreadable transaction id {text}")))
    }

    async fn current_snapshot(&self) -> Result<Snapshot, Error> {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_current_snapshot()::text AS snapshot",
            ))
            .await?
            .ok_or_else(|| Error::internal("pg_current_snapshot returned no row"))?;
        let text: String = row.try_get("", "snapshot")?;
        Snapshot::parse(&text).ok_or_else(|| Error::internal(format!("unreadable snapshot {text}")))
    }

    /// Up to `limit` positions of `table` after `after`, in order, with the snapshot that saw them (PostgreSQL).
    pub async fn probe_positions(
        &self,
        table: OutboxTable,
        after: i64,
        limit: u64,
    ) -> Result<ProbedPositions, Error> {
        if self.backend() != DbBackend::Postgres {
            return Ok(ProbedPositions {
                positions: Vec::new(),
                snapshot: None,
            });
        }
        let (name, column) = table.table_and_column();
        // One statement, so the positions and the snapshot are the same moment (the statement's snapshot).
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT pg_current_snapshot()::text AS snapshot, \
                     COALESCE(string_agg({column}::text, ',' ORDER BY {column}), '') AS positions \
                     FROM (SELECT {column} FROM {name} WHERE {column} > $1 ORDER BY {column} LIMIT $2) AS page"
                ),
                [after.into(), (limit as i64).into()],
            ))
            .await?
            .ok_or_else(|| Error::internal("the outbox probe returned no row"))?;
        let snapshot: String = row.try_get("", "snapshot")?;
        let positions: String = row.try_get("", "positions")?;
        let positions = positions
            .split(',')
            .filter(|position| !position.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<i64>, _>>()
            .map_err(|error| Error::internal(format!("unreadable outbox position: {error}")))?;
        let snapshot = Snapshot::parse(&snapshot)
            .ok_or_else(|| Error::internal(format!("unreadable snapshot {snapshot}")))?;
        Ok(ProbedPositions {
            positions,
            snapshot: Some(snapshot),
        })
    }

    /// Up to `limit` history entries after `after` and at most `up_to`, oldest first, with their ticket
    /// snapshots.
    pub async fn events_between(
        &self,
        after: i64,
        up_to: i64,
        limit: u64,
    ) -> Result<Vec<TicketEvent>, Error> {
        ticket_event::Entity::find()
            .filter(ticket_event::Column::EventId.gt(after))
            .filter(ticket_event::Column::EventId.lte(up_to))
            .order_by_asc(ticket_event::Column::EventId)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(super::history::event_to_domain)
            .collect()
    }

    /// Up to `limit` card renders after position `after` and at most `up_to`, in position order.
    pub async fn renders_between(
        &self,
        after: i64,
        up_to: i64,
        limit: u64,
    ) -> Result<Vec<PositionedRender>, Error> {
        card_render::Entity::find()
            .filter(card_render::Column::Position.gt(after))
            .filter(card_render::Column::Position.lte(up_to))
            .order_by_asc(card_render::Column::Position)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(render_to_domain)
            .collect()
    }
}

pub(super) fn render_to_domain(row: card_render::Model) -> Result<PositionedRender, Error> {
    Ok(PositionedRender {
        position: row.position,
        render: CardRender {
            card_id: row.card_id,
            version: row.version,
            ticket_id: row.ticket_id,
            group_id: row.group_id,
            view: row.view,
            texts: from_json(row.texts)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{IdenStatic, Iterable};

    #[test]
    fn appended_columns_are_the_tables_and_the_rows() {
        let mut table: Vec<&str> = ticket_event::Column::iter()
            .map(|column| column.as_str())
            .filter(|&name| name != "event_id" && name != APPEND_TIME_COLUMN)
            .collect();
        let mut appended: Vec<&str> = APPENDED_COLUMNS.iter().map(|(name, _)| *name).collect();
        table.sort_unstable();
        appended.sort_unstable();
        assert_eq!(
            appended, table,
            "APPENDED_COLUMNS against the ticket_events entity"
        );

        let row = EventRow {
            ticket_id: 1,
            kind: "CREATED",
            actor_id: "a",
            changes: &[],
            detail: None,
            ticket: None,
            notify: "ALL",
            skip_automations: false,
            cause_event_id: None,
        };
        let serde_json::Value::Object(fields) =
            serde_json::to_value(&row).expect("an EventRow serialises")
        else {
            panic!("an EventRow serialises as an object");
        };
        let mut fields: Vec<&str> = fields.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields, appended,
            "EventRow's fields against APPENDED_COLUMNS"
        );
    }

    #[test]
    fn the_echo_of_this_process_is_ignored() {
        let signal = OutboxSignal::default();
        let own = Appended::ALL.payload(&signal.sender);
        signal.notify_from_channel(&own);
        assert_eq!(signal.take_appended(), Appended::default());
    }

    #[test]
    fn another_replica_wakes_the_tailer_for_what_it_appended() {
        let signal = OutboxSignal::default();
        let other = OutboxSignal::default();
        assert_ne!(
            signal.sender, other.sender,
            "every process has its own name"
        );
        let events_only = Appended {
            events: true,
            renders: false,
        };
        signal.notify_from_channel(&events_only.payload(&other.sender));
        assert_eq!(signal.take_appended(), events_only);
        assert_eq!(signal.take_appended(), Appended::default(), "taken once");
    }

    #[test]
    fn a_payload_without_a_sender_wakes_for_everything() {
        // An older replica sends an empty payload during a rolling upgrade.
        let signal = OutboxSignal::default();
        signal.notify_from_channel("");
        assert_eq!(signal.take_appended(), Appended::ALL);
    }

    #[test]
    fn kinds_accumulate_until_taken() {
        let signal = OutboxSignal::default();
        signal.notify(Appended {
            events: true,
            renders: false,
        });
        signal.notify(Appended {
            events: false,
            renders: true,
        });
        assert_eq!(signal.take_appended(), Appended::ALL);
    }
}
