//! `import` through ImportTickets: NDJSON and CSV, bad lines reported by their line number.

use std::{collections::HashSet, fmt::Write as _};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::support::{TestServer, both_databases};

both_databases!(
    ndjson_of_10000_lines_with_one_refused_line,
    csv_with_an_unreadable_line_and_a_resend,
    ndjson_that_is_not_json_is_reported_locally,
    a_connection_cut_mid_import_is_resumed_without_duplicates,
);

const LINES: usize = 10_000;
const BAD_LINE: usize = 5_000;

async fn ndjson_of_10000_lines_with_one_refused_line(server: TestServer) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut text = String::new();
    for line in 1..=LINES {
        // An empty subject: the server refuses this one item and imports the rest.
        let subject = if line == BAD_LINE {
            String::new()
        } else {
            format!("imported ticket {line}")
        };
        let _ = writeln!(
            text,
            r#"{{"subject": "{subject}", "externalId": "Z-{line}", "priority": "PRIORITY_LOW", "tags": ["zendesk"]}}"#
        );
    }
    let path = dir.path().join("tickets.ndjson");
    std::fs::write(&path, text).expect("writes");

    let run = server
        .ctl(&["import", "-f", path.to_str().expect("a UTF-8 path")])
        .await;
    assert_eq!(run.code, 2, "some items refused exits 2: {}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "9999 imported, 0 skipped (imported before), 1 failed",
        "{}",
        run.stderr
    );
    let mut stderr = run.stderr.lines();
    let report = stderr.next().unwrap_or_default();
    assert!(
        report.starts_with(&format!("line {BAD_LINE}: INVALID_ARGUMENT: ")),
        "{}",
        run.stderr
    );
    assert!(
        stderr
            .next()
            .is_some_and(|line| line.starts_with("  ticket.subject: ")),
        "{}",
        run.stderr
    );

    let tickets = server.all_tickets().await;
    assert_eq!(tickets.len(), LINES - 1);
    let external_ids: HashSet<&str> = tickets.iter().map(|t| t.external_id.as_str()).collect();
    assert_eq!(external_ids.len(), LINES - 1);
    assert!(!external_ids.contains(format!("Z-{BAD_LINE}").as_str()));
    assert!(external_ids.contains("Z-1") && external_ids.contains("Z-10000"));
    let sample = tickets
        .iter()
        .find(|t| t.external_id == "Z-42")
        .expect("Z-42 imported");
    assert_eq!(sample.subject, "imported ticket 42");
    assert_eq!(sample.tags, ["zendesk"]);
}

async fn csv_with_an_unreadable_line_and_a_resend(server: TestServer) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("tickets.csv");
    std::fs::write(
        &path,
        "subject,priority,external_id,assignee_id,tags\n\
         printer jammed,high,C-1,agent-1,printer;hardware\n\
         no priority like this,sometimes,C-2,,\n\
         \"login, broken\",low,C-3,,\n",
    )
    .expect("writes");
    let file = path.to_str().expect("a UTF-8 path");

    let run = server.ctl(&["import", "-f", file]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        "2 imported, 0 skipped (imported before), 1 failed"
    );
    assert!(
        run.stderr.starts_with("line 3: priority "),
        "{}",
        run.stderr
    );

    let tickets = server.all_tickets().await;
    let mut subjects: Vec<&str> = tickets.iter().map(|t| t.subject.as_str()).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["login, broken", "printer jammed"]);
    let printer = tickets
        .iter()
        .find(|t| t.external_id == "C-1")
        .expect("C-1 imported");
    assert_eq!(printer.assignee_id, "agent-1");
    assert_eq!(printer.tags, ["hardware", "printer"]);

    // Resending the file imports nothing twice.
    let again = server.ctl(&["import", "-f", file]).await;
    assert_eq!(
        again.stdout.trim(),
        "0 imported, 2 skipped (imported before), 1 failed"
    );
    assert_eq!(server.all_tickets().await.len(), 2);
}

async fn ndjson_that_is_not_json_is_reported_locally(server: TestServer) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("tickets.jsonl");
    std::fs::write(
        &path,
        "{\"subject\": \"one\", \"externalId\": \"J-1\"}\n\n{oops\n{\"subject\": \"two\", \"externalId\": \"J-2\"}\n",
    )
    .expect("writes");
    let run = server
        .ctl(&["import", "-f", path.to_str().expect("a UTF-8 path")])
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("line 3: not JSON"), "{}", run.stderr);
    assert_eq!(
        run.stdout.trim(),
        "2 imported, 0 skipped (imported before), 1 failed"
    );
    assert_eq!(server.all_tickets().await.len(), 2);
}

/// The first connection through the proxy is cut once the client has sent this much: mid-stream, with items
/// sent, some answered and some not.
const CUT_AFTER_BYTES: usize = 64 * 1024;

async fn a_connection_cut_mid_import_is_resumed_without_duplicates(server: TestServer) {
    const ITEMS: usize = 3_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut text = String::new();
    for line in 1..=ITEMS {
        let _ = writeln!(
            text,
            r#"{{"subject": "resumed ticket {line}", "externalId": "R-{line}"}}"#
        );
    }
    let path = dir.path().join("tickets.ndjson");
    std::fs::write(&path, text).expect("writes");
    let proxy = cutting_proxy(server.addr).await;

    let run = server
        .ctl_env(
            &["import", "-f", path.to_str().expect("a UTF-8 path")],
            &[("TICKETD_ADDR", &format!("http://{proxy}"))],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("the import stream broke"),
        "the cut was noticed and resumed: {}",
        run.stderr
    );
    // Items the broken stream committed are found by their external ids when resent, and count as imported.
    assert_eq!(
        run.stdout.trim(),
        format!("{ITEMS} imported, 0 skipped (imported before), 0 failed"),
        "{}",
        run.stderr
    );
    let tickets = server.all_tickets().await;
    assert_eq!(tickets.len(), ITEMS, "nothing imported twice");
    let external_ids: HashSet<&str> = tickets.iter().map(|t| t.external_id.as_str()).collect();
    assert_eq!(external_ids.len(), ITEMS);
}

/// A TCP proxy to `target` that cuts its first connection after `CUT_AFTER_BYTES` from the client, and passes
/// every later one through whole.
async fn cutting_proxy(target: std::net::SocketAddr) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((client, _)) = listener.accept().await {
            let Ok(upstream) = TcpStream::connect(target).await else {
                continue;
            };
            let cut_after = first.then_some(CUT_AFTER_BYTES);
            first = false;
            tokio::spawn(pass_through(client, upstream, cut_after));
        }
    });
    addr
}

async fn pass_through(client: TcpStream, upstream: TcpStream, cut_after: Option<usize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let upward = async {
        let mut sent = 0;
        let mut buffer = vec![0; 8192];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if upstream_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
            sent += read;
            if cut_after.is_some_and(|cut| sent >= cut) {
                return;
            }
        }
    };
    let downward = async {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
    };
    // Whichever direction ends first ends both: the halves are dropped and both sockets close.
    tokio::select! {
        () = upward => {}
        () = downward => {}
    }
}
