//! `watch tickets` while another client writes.

use std::{
    io::{BufRead, BufReader},
    process::Child,
    sync::mpsc,
    time::{Duration, Instant},
};

use ticketd::proto::{
    AddCommentRequest, ArchiveTicketRequest, CommentVisibility, ListTicketHistoryRequest, Priority,
    Ticket, UpdateTicketRequest,
};

use crate::support::{TestServer, both_databases};

both_databases!(watch_prints_a_line_per_event_of_another_client);

/// How long one expected line may take to appear.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `ticketctl watch` whose stdout lines arrive on a channel; killed on drop.
struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watcher {
    fn start(server: &TestServer, args: &[&str]) -> Self {
        let mut child = server.spawn_ctl(args);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Lines until one satisfies `wanted` (returned with those before it); panics after the timeout.
    fn until(&self, what: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = wanted(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no line with {what} within {LINE_TIMEOUT:?}; saw {seen:#?}"),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn watch_prints_a_line_per_event_of_another_client(server: TestServer) {
    let first = server
        .create_ticket(Ticket {
            subject: "before the watch".into(),
            ..Ticket::default()
        })
        .await;
    let mut client = server.tickets();
    let created_event = client
        .list_ticket_history(ListTicketHistoryRequest {
            ticket_id: first.id,
            ..ListTicketHistoryRequest::default()
        })
        .await
        .expect("ListTicketHistory")
        .into_inner()
        .events[0]
        .event_id;

    // From the creation on, so that nothing written below can slip past before the stream opens.
    let after = created_event.to_string();
    let watcher = Watcher::start(&server, &["watch", "tickets", "--after", &after]);

    client
        .update_ticket(UpdateTicketRequest {
            ticket: Some(Ticket {
                id: first.id,
                priority: Priority::High as i32,
                ..Ticket::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["priority".into()],
            }),
            ..UpdateTicketRequest::default()
        })
        .await
        .expect("UpdateTicket");
    client
        .add_comment(AddCommentRequest {
            ticket_id: first.id,
            body: "looking into it".into(),
            visibility: CommentVisibility::Public as i32,
            ..AddCommentRequest::default()
        })
        .await
        .expect("AddComment");
    let second = server
        .create_ticket(Ticket {
            subject: "during the watch".into(),
            ..Ticket::default()
        })
        .await;
    client
        .archive_ticket(ArchiveTicketRequest {
            id: second.id,
            ..ArchiveTicketRequest::default()
        })
        .await
        .expect("ArchiveTicket");

    let first_name = format!("ticket/{} ", first.id);
    let second_name = format!("ticket/{} ", second.id);
    let updated = watcher.until("UPDATED", |line| line.contains(" UPDATED "));
    let line = updated.last().expect("a line");
    assert!(line.contains(&first_name), "{line}");
    assert!(line.contains("priority"), "{line}");
    assert!(line.starts_with('#'), "{line}");
    assert!(!line.contains('\x1b'), "no colour on a pipe: {line:?}");
    assert!(
        !updated
            .iter()
            .any(|line| line.contains(" CREATED ") && line.contains(&first_name)),
        "events up to --after are not replayed: {updated:#?}"
    );
    let comment = watcher.until("COMMENT_ADDED", |line| line.contains(" COMMENT_ADDED "));
    assert!(
        comment
            .last()
            .is_some_and(|line| line.contains("looking into it")),
        "{comment:#?}"
    );
    let created = watcher.until("CREATED", |line| line.contains(" CREATED "));
    assert!(
        created
            .last()
            .is_some_and(|line| line.contains(&second_name)),
        "{created:#?}"
    );
    let archived = watcher.until("ARCHIVED", |line| line.contains(" ARCHIVED "));
    assert!(
        archived
            .last()
            .is_some_and(|line| line.contains(&second_name)),
        "{archived:#?}"
    );
    drop(watcher);

    // `--ticket` keeps only that ticket's events.
    let only_second = Watcher::start(
        &server,
        &[
            "watch",
            "tickets",
            "--ticket",
            &second.id.to_string(),
            "--after",
            &after,
        ],
    );
    let lines = only_second.until("ARCHIVED", |line| line.contains(" ARCHIVED "));
    assert!(
        lines.iter().all(|line| line.contains(&second_name)),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 2, "CREATED and ARCHIVED: {lines:#?}");
    drop(only_second);

    // `-o json`: one proto3 JSON object per line.
    let json = Watcher::start(
        &server,
        &[
            "watch",
            "tickets",
            "--ticket",
            &second.id.to_string(),
            "--after",
            &after,
            "-o",
            "json",
        ],
    );
    let first_line = json.until("a JSON line", |_| true);
    let event: serde_json::Value =
        serde_json::from_str(&first_line[0]).expect("each line is a JSON object");
    assert_eq!(event["kind"], "CREATED", "{event}");
    assert_eq!(event["ticketId"], second.id.to_string(), "{event}");
    assert_eq!(event["ticket"]["subject"], "during the watch", "{event}");
}
