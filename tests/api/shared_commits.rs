//! Concurrent writes that share a commit (SQLite groups the writes queued behind its write gate into one
//! transaction, a savepoint each; PostgreSQL commits each on its own): a request that fails leaves nothing
//! behind and takes no other request down with it, and every answered write is durable, in the history and
//! in the stream.

use std::collections::BTreeSet;

use ticketd::proto::{BatchCreateTicketsRequest, Ticket};
use tonic::Code;

use crate::support::*;

both_databases!(concurrent_writes_fail_alone_and_every_answered_one_is_kept);

const WRITERS: usize = 24;

async fn concurrent_writes_fail_alone_and_every_answered_one_is_kept(app: TestApp) {
    let taken = app
        .create_ticket(Ticket {
            external_id: "taken".to_owned(),
            ..ticket("holds the external id")
        })
        .await;
    let baseline = app.last_event_id(taken.id).await;
    let mut watch = app.watch(watch_all(baseline)).await;

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = app.tickets();
        writers.push(tokio::spawn(async move {
            if writer % 2 == 0 {
                let created = client
                    .create_ticket(create_ticket_req(ticket(&format!("kept {writer}"))))
                    .await
                    .unwrap_or_else(|status| panic!("writer {writer}: {status:?}"))
                    .into_inner();
                Some(created)
            } else {
                // The first item is written, then the second one's external id is refused: the whole request
                // must leave nothing, whatever it shared a transaction with.
                let refused = client
                    .batch_create_tickets(BatchCreateTicketsRequest {
                        requests: vec![
                            create_ticket_req(ticket(&format!("doomed {writer}"))),
                            create_ticket_req(Ticket {
                                external_id: "taken".to_owned(),
                                ..ticket(&format!("doomed too {writer}"))
                            }),
                        ],
                        ..Default::default()
                    })
                    .await;
                let status = refused.expect_err("a batch reusing an external id is refused");
                assert_eq!(
                    status.code(),
                    Code::AlreadyExists,
                    "writer {writer}: {status:?}"
                );
                None
            }
        }));
    }
    let mut kept = Vec::new();
    for writer in writers {
        if let Some(ticket) = writer.await.expect("a writer panicked") {
            kept.push(ticket);
        }
    }
    assert_eq!(kept.len(), WRITERS / 2);

    let stored = app.list_all_tickets(Default::default()).await;
    let subjects: BTreeSet<&str> = stored.iter().map(|t| t.subject.as_str()).collect();
    assert!(
        subjects
            .iter()
            .all(|subject| !subject.starts_with("doomed")),
        "nothing of a refused request is stored: {subjects:?}"
    );
    assert_eq!(
        stored.len(),
        1 + kept.len(),
        "the kept tickets and the first one"
    );
    for ticket in &kept {
        assert_eq!(
            &app.get_ticket(ticket.id).await,
            ticket,
            "answered as stored"
        );
    }

    let history = app.history_after(baseline).await;
    let created_ids: BTreeSet<i64> = kept.iter().map(|t| t.id).collect();
    assert_eq!(
        history.iter().map(|e| e.ticket_id).collect::<BTreeSet<_>>(),
        created_ids,
        "one CREATED event per kept ticket and none for refused ones"
    );
    assert_eq!(history.len(), kept.len());
    let streamed = next_messages(&mut watch, history.len(), "the watcher").await;
    assert_eq!(
        event_ids(&streamed),
        event_ids(&history),
        "the stream carries exactly the history, in order"
    );
    app.shutdown().await;
}
