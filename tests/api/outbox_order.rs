//! The outbox under adversarial writers (PostgreSQL): transactions that draw event ids, sleep inside, commit
//! out of order or roll back, beside ordinary API writes on two replicas, while readers hang up and resume
//! on either replica again and again. Every reader must end with exactly ListTicketHistory's ids: none
//! missing, none repeated, strictly increasing.
//!
//! The adversaries write `ticket_events` directly, the way `src/store/outbox.rs` appends: the transaction has
//! its id (`pg_current_xact_id()`) before it draws an event id. Their sleeps make what is rare under real load
//! (a later id committing first, a drawn id rolled back) happen every few milliseconds.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use ticketd::proto::TicketEvent;
use tokio::sync::watch;

use crate::support::*;

postgres_only!(streams_never_skip_or_repeat_while_transactions_commit_out_of_order_and_roll_back);

const ADVERSARIES: u64 = 6;
const ADVERSARY_TRANSACTIONS: u64 = 30;
const API_WRITES: usize = 40;
const READERS: usize = 3;

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

async fn streams_never_skip_or_repeat_while_transactions_commit_out_of_order_and_roll_back(
    app: TestApp,
) {
    let replica = app.another_server().await;
    let ticket = app.create_ticket(ticket("contended")).await;
    let baseline = app.last_event_id(ticket.id).await;

    let (done_tx, done) = watch::channel(None::<i64>);
    let mut readers = Vec::new();
    for reader in 0..READERS {
        let servers = [app.tickets(), replica.tickets()];
        let done = done.clone();
        readers.push(tokio::spawn(read_resuming(
            reader as u64 + 1,
            servers,
            baseline,
            done,
        )));
    }

    let mut adversaries = Vec::new();
    for adversary in 0..ADVERSARIES {
        let url = app.database.url.clone();
        adversaries.push(tokio::spawn(write_adversarially(
            adversary + 1,
            url,
            baseline,
        )));
    }
    let mut api_writers = Vec::new();
    for (index, server) in [app.tickets(), replica.tickets()].into_iter().enumerate() {
        let mut client = server;
        let id = ticket.id;
        api_writers.push(tokio::spawn(async move {
            for write in 0..API_WRITES {
                let change = subject_change(id, &format!("server {index} write {write}"));
                client
                    .update_ticket(update_ticket_req(change, &["subject"]))
                    .await
                    .unwrap_or_else(|status| panic!("API write {write} failed: {status:?}"));
            }
        }));
    }
    let mut committed = 0;
    let mut rolled_back = 0;
    for adversary in adversaries {
        let (commits, rollbacks) = adversary.await.expect("an adversary panicked");
        committed += commits;
        rolled_back += rollbacks;
    }
    for writer in api_writers {
        writer.await.expect("an API writer panicked");
    }
    assert!(
        committed > 0 && rolled_back > 0,
        "the adversaries both committed ({committed}) and rolled back ({rolled_back})"
    );

    let expected = event_ids(&app.history(ticket.id).await);
    let expected: Vec<i64> = expected.into_iter().filter(|&id| id > baseline).collect();
    assert_eq!(
        expected.len() as u64,
        committed + 2 * API_WRITES as u64,
        "ListTicketHistory has every committed write and nothing rolled back"
    );
    let last = *expected.last().expect("events were written");
    done_tx.send_replace(Some(last));
    for (index, reader) in readers.into_iter().enumerate() {
        let received = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .unwrap_or_else(|_| panic!("reader {index} did not reach event {last} within 60 s"))
            .expect("a reader panicked");
        let strictly_increasing = received.windows(2).all(|pair| pair[0] < pair[1]);
        assert!(strictly_increasing, "reader {index}: ids strictly increase");
        assert_eq!(
            received, expected,
            "reader {index}: exactly the committed events, each once, in order"
        );
    }
    replica.shutdown().await;
    app.shutdown().await;
}

/// Transactions that append a copy of an event, sleep, and commit or roll back; returns (commits, rollbacks).
async fn write_adversarially(seed: u64, url: String, template_event: i64) -> (u64, u64) {
    let db = Database::connect(url.as_str())
        .await
        .expect("the adversary connects");
    let mut random = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (mut commits, mut rollbacks) = (0, 0);
    for _ in 0..ADVERSARY_TRANSACTIONS {
        let txn = db.begin().await.expect("BEGIN");
        txn.execute_unprepared("SELECT pg_current_xact_id()")
            .await
            .expect("an xid");
        tokio::time::sleep(Duration::from_millis(random.below(5))).await;
        txn.execute_unprepared(&format!(
            "INSERT INTO ticket_events (ticket_id, kind, actor_id, changes, detail, create_time, ticket, \
             notify, skip_automations) \
             SELECT ticket_id, kind, 'adversary', changes, detail, now(), ticket, notify, skip_automations \
             FROM ticket_events WHERE event_id = {template_event}"
        ))
        .await
        .expect("append");
        tokio::time::sleep(Duration::from_millis(random.below(30))).await;
        if random.below(3) == 0 {
            txn.rollback().await.expect("ROLLBACK");
            rollbacks += 1;
        } else {
            // As the service does, so that tailers wake at the commit.
            txn.execute_unprepared("NOTIFY ticketd_outbox")
                .await
                .expect("NOTIFY");
            txn.commit().await.expect("COMMIT");
            commits += 1;
        }
    }
    (commits, rollbacks)
}

/// Reads a few events at a time, hangs up, and resumes on the next replica from the last id it received,
/// until `done` names the last event and it has it; returns every id received, in order.
async fn read_resuming(
    seed: u64,
    mut servers: [Tickets; 2],
    after: i64,
    mut done: watch::Receiver<Option<i64>>,
) -> Vec<i64> {
    let mut random = XorShift(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut received: Vec<i64> = Vec::new();
    let mut turn = 0;
    loop {
        let cursor = received.last().copied().unwrap_or(after);
        if done.borrow().is_some_and(|last| cursor >= last) {
            return received;
        }
        let server = &mut servers[turn % 2];
        turn += 1;
        let mut stream = match server.watch_tickets(watch_all(cursor)).await {
            Ok(response) => response.into_inner(),
            Err(status) => panic!("WatchTickets after {cursor}: {status:?}"),
        };
        let take = 1 + random.below(12);
        let stay = Duration::from_millis(5 + random.below(40));
        let deadline = tokio::time::Instant::now() + stay;
        for _ in 0..take {
            let next = tokio::select! {
                next = stream.message() => next,
                () = tokio::time::sleep_until(deadline) => break,
                _ = done.changed() => break,
            };
            match next {
                Ok(Some(TicketEvent { event_id, .. })) => received.push(event_id),
                Ok(None) => break,
                Err(status) => panic!("reader {seed}: the stream failed: {status:?}"),
            }
        }
    }
}
