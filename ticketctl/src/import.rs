//! `import -f FILE`: NDJSON or CSV items streamed through ImportTickets, numbered by their line, with a progress
//! bar on stderr and a summary on stdout. A line that cannot be read is reported here and never sent; a line the
//! server refuses is reported from its answer; the rest is imported.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use ticketd::proto::{
    ImportItem, ImportOptions, ImportTicketsRequest, ImportTicketsResponse, OnConflict, Ticket,
    import_tickets_request::Kind,
};
use tokio::sync::{Mutex as AsyncMutex, mpsc, watch};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Code, Status};

use crate::{
    cli::{ImportArgs, ImportFormat, OnConflictArg},
    client::Server,
    error::{CliError, describe_status, status_of_item, violations},
    fields::set_field,
    output::from_json,
    output::outln,
};

/// Items read ahead of the server's answers.
const READ_AHEAD: usize = 1024;

/// How often a broken import stream is opened again without an answer in between, and the pause before the
/// first reopening (the second waits twice as long, and so on).
const RESUMES: u32 = 5;
const RESUME_DELAY: Duration = Duration::from_millis(500);

/// Counts of one import.
#[derive(Debug, Default)]
struct Tally {
    imported: u64,
    skipped: u64,
    refused: u64,
    unreadable: u64,
}

pub async fn import(server: &Server, args: ImportArgs) -> Result<(), CliError> {
    let format = match args.format {
        Some(format) => format,
        None => format_of(&args.file)?,
    };
    let path = args.file.clone();
    let total = tokio::task::spawn_blocking(move || count_items(&path, format))
        .await
        .map_err(|error| CliError::local(format!("counting the items failed: {error}")))??;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items  {elapsed} elapsed, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let (items, read) = mpsc::channel(READ_AHEAD);
    let options = ImportOptions {
        on_conflict: match args.on_conflict {
            OnConflictArg::Skip => OnConflict::Skip,
            OnConflictArg::Update => OnConflict::Update,
        } as i32,
        ..ImportOptions::default()
    };
    let reader = {
        let (path, bar) = (args.file.clone(), bar.clone());
        tokio::task::spawn_blocking(move || read_items(&path, format, &items, &bar))
    };

    let mut tally = Tally::default();
    let outcome = send_and_tally(server, options, read, &bar, &mut tally).await;
    let read = reader
        .await
        .map_err(|error| CliError::local(format!("reading the file failed: {error}")))?;
    bar.finish_and_clear();
    match read {
        Ok(unreadable) => tally.unreadable = unreadable,
        // The file could not be read to its end: what was sent is accounted for above.
        Err(error) => {
            print_summary(&tally);
            return Err(error);
        }
    }
    print_summary(&tally);
    outcome?;
    let failed = tally.refused + tally.unreadable;
    if failed > 0 {
        return Err(CliError::Partial {
            failed: failed as usize,
        });
    }
    Ok(())
}

/// Items sent on the current stream and not answered yet, by offset.
type Unanswered = Arc<Mutex<BTreeMap<i64, ImportItem>>>;

/// Streams the items read and counts the answers. A stream cut off by the connection (or by the server being
/// unable to reach its database) is opened again, and the items it left unanswered are sent again first:
/// external ids make that safe, since what the broken stream committed is found instead of imported twice.
async fn send_and_tally(
    server: &Server,
    options: ImportOptions,
    read: mpsc::Receiver<ImportItem>,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> Result<(), Status> {
    let read = Arc::new(AsyncMutex::new(read));
    let unanswered: Unanswered = Arc::default();
    let mut resumes = 0;
    loop {
        let resent: Vec<ImportItem> = {
            // Held while copying: a stream of a broken attempt may be taking an item right now, and it notes
            // the item as unanswered before it lets go of the reader.
            let _reader = read.lock().await;
            lock(&unanswered).values().cloned().collect()
        };
        let resent_offsets: BTreeSet<i64> = resent.iter().map(|item| item.offset).collect();
        let (ended, attempt_ended) = watch::channel(false);
        let requests = requests(
            options,
            resent,
            Arc::clone(&read),
            Arc::clone(&unanswered),
            attempt_ended,
        );
        let attempt = async {
            let mut answers = server
                .tickets()
                .import_tickets(requests)
                .await?
                .into_inner();
            while let Some(answer) = answers.message().await? {
                lock(&unanswered).remove(&answer.offset);
                // Progress: a later break starts counting its resumes afresh.
                resumes = 0;
                bar.inc(1);
                tally.count(&answer, resent_offsets.contains(&answer.offset), bar);
            }
            Ok::<(), Status>(())
        }
        .await;
        // Its request stream, if the transport still holds it, stops taking items and lets go of the reader.
        let _ = ended.send(true);
        match attempt {
            Err(status) if resumable(&status) && resumes < RESUMES => {
                resumes += 1;
                bar.suspend(|| {
                    eprintln!(
                        "the import stream broke ({}); resuming with the {} unanswered items",
                        describe_status(&status),
                        lock(&unanswered).len()
                    );
                });
                tokio::time::sleep(RESUME_DELAY * resumes).await;
            }
            ended => return ended,
        }
    }
}

/// The messages of one ImportTickets stream: the options, the items a broken stream left unanswered, then
/// every item read from here on, each noted as unanswered before it leaves, until the attempt has `ended`.
fn requests(
    options: ImportOptions,
    resent: Vec<ImportItem>,
    read: Arc<AsyncMutex<mpsc::Receiver<ImportItem>>>,
    unanswered: Unanswered,
    ended: watch::Receiver<bool>,
) -> impl Stream<Item = ImportTicketsRequest> + Send + 'static {
    let first = std::iter::once(Kind::Options(options)).chain(resent.into_iter().map(Kind::Item));
    let state = (read, unanswered, ended);
    let fresh = futures_util::stream::unfold(state, |(read, unanswered, mut ended)| async move {
        let item = {
            // An ended attempt takes nothing more, even with an item ready.
            let mut reader = tokio::select! {
                biased;
                _ = ended.wait_for(|ended| *ended) => return None,
                reader = read.lock() => reader,
            };
            let item = tokio::select! {
                biased;
                _ = ended.wait_for(|ended| *ended) => return None,
                item = reader.recv() => item?,
            };
            // Noted before the reader is let go, so the next attempt's copy of the unanswered has it.
            lock(&unanswered).insert(item.offset, item.clone());
            item
        };
        Some((Kind::Item(item), (read, unanswered, ended)))
    });
    tokio_stream::iter(first)
        .chain(fresh)
        .map(|kind| ImportTicketsRequest { kind: Some(kind) })
}

/// A break this side of the server (the connection) or the server's own "retry with backoff".
fn resumable(status: &Status) -> bool {
    // Statuses the server sent carry no source; those made here from a transport error do.
    std::error::Error::source(status).is_some() || status.code() == Code::Unavailable
}

fn lock(unanswered: &Unanswered) -> std::sync::MutexGuard<'_, BTreeMap<i64, ImportItem>> {
    // Nothing panics while holding it, and the map stays consistent if something did.
    unanswered
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Tally {
    fn count(&mut self, answer: &ImportTicketsResponse, resent: bool, bar: &ProgressBar) {
        let Some(status) = &answer.status else {
            self.imported += 1;
            return;
        };
        let status = status_of_item(status);
        if status.code() == Code::AlreadyExists {
            // A resent item found by its external id was committed by the stream that broke.
            if resent {
                self.imported += 1;
            } else {
                self.skipped += 1;
            }
            return;
        }
        self.refused += 1;
        let mut report = format!("line {}: {}", answer.offset, describe_status(&status));
        for violation in violations(&status) {
            report.push_str("\n  ");
            report.push_str(&violation);
        }
        bar.suspend(|| eprintln!("{report}"));
    }
}

fn print_summary(tally: &Tally) {
    outln!(
        "{} imported, {} skipped (imported before), {} failed",
        tally.imported,
        tally.skipped,
        tally.refused + tally.unreadable
    );
}

/// The format named by the file's extension.
fn format_of(path: &Path) -> Result<ImportFormat, CliError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("ndjson" | "jsonl" | "json") => Ok(ImportFormat::Ndjson),
        Some("csv") => Ok(ImportFormat::Csv),
        _ => Err(CliError::local(format!(
            "{}: cannot tell the format from the extension; pass --format ndjson or --format csv",
            path.display()
        ))),
    }
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path)
        .map_err(|error| CliError::local(format!("cannot read {}: {error}", path.display())))
}

/// How many items the file holds (non-blank lines; CSV records), for the progress bar.
fn count_items(path: &Path, format: ImportFormat) -> Result<u64, CliError> {
    let mut count = 0;
    match format {
        ImportFormat::Ndjson => {
            let mut lines = NdjsonLines::new(open(path)?);
            while let Some((_, line)) = lines.next_line(path)? {
                if !line.trim().is_empty() {
                    count += 1;
                }
            }
        }
        ImportFormat::Csv => {
            let mut reader = csv::Reader::from_reader(open(path)?);
            let mut record = csv::ByteRecord::new();
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(true) => count += 1,
                    Ok(false) => break,
                    // Counted, and reported with its line when read for real.
                    Err(_) => count += 1,
                }
            }
        }
    }
    Ok(count)
}

/// Reads the file and sends its items; reports unreadable items itself and returns how many there were.
fn read_items(
    path: &Path,
    format: ImportFormat,
    items: &mpsc::Sender<ImportItem>,
    bar: &ProgressBar,
) -> Result<u64, CliError> {
    let mut unreadable = 0;
    let mut handle = |line: u64, item: Result<ImportItem, String>| -> bool {
        match item {
            Ok(mut item) => {
                // The line number is the item's offset, echoed in its answer.
                item.offset = line as i64;
                // False when nobody sends any more: the import ended, which its answers say.
                items.blocking_send(item).is_ok()
            }
            Err(message) => {
                unreadable += 1;
                bar.inc(1);
                bar.suspend(|| eprintln!("line {line}: {message}"));
                true
            }
        }
    };
    match format {
        ImportFormat::Ndjson => {
            let mut lines = NdjsonLines::new(open(path)?);
            while let Some((number, line)) = lines.next_line(path)? {
                if line.trim().is_empty() {
                    continue;
                }
                if !handle(number, parse_ndjson(&line)) {
                    break;
                }
            }
        }
        ImportFormat::Csv => {
            let mut reader = csv::Reader::from_reader(open(path)?);
            let headers = reader
                .headers()
                .map_err(|error| CliError::local(format!("{}: {error}", path.display())))?
                .iter()
                .map(|header| header.trim().to_owned())
                .collect::<Vec<_>>();
            let mut record = csv::StringRecord::new();
            loop {
                let (line, item) = match reader.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => (
                        record.position().map_or(0, csv::Position::line),
                        csv_item(&headers, &record),
                    ),
                    Err(error) => (
                        error.position().map_or(0, csv::Position::line),
                        Err(error.to_string()),
                    ),
                };
                if !handle(line, item) {
                    break;
                }
            }
        }
    }
    Ok(unreadable)
}

/// Lines with their numbers; a line that is not UTF-8 is kept (lossily) for the parser to refuse.
struct NdjsonLines {
    reader: BufReader<File>,
    number: u64,
    buffer: Vec<u8>,
}

impl NdjsonLines {
    fn new(file: File) -> Self {
        Self {
            reader: BufReader::new(file),
            number: 0,
            buffer: Vec::new(),
        }
    }

    fn next_line(&mut self, path: &Path) -> Result<Option<(u64, String)>, CliError> {
        self.buffer.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.buffer)
            .map_err(|error| CliError::local(format!("cannot read {}: {error}", path.display())))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some((
            self.number,
            String::from_utf8_lossy(&self.buffer).into_owned(),
        )))
    }
}

/// A line: an import item (`{"ticket": ..., "comments": [...]}`) or a bare ticket, in proto3 JSON.
fn parse_ndjson(line: &str) -> Result<ImportItem, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    if value.get("ticket").is_some() {
        from_json::<ImportItem>(value).map_err(|error| format!("not an import item: {error}"))
    } else {
        let ticket =
            from_json::<Ticket>(value).map_err(|error| format!("not a ticket: {error}"))?;
        Ok(ImportItem {
            ticket: Some(ticket),
            ..ImportItem::default()
        })
    }
}

/// A CSV record: each non-empty cell set on the ticket as `--set HEADER=CELL` would.
fn csv_item(headers: &[String], record: &csv::StringRecord) -> Result<ImportItem, String> {
    let mut ticket = Ticket::default();
    for (header, cell) in headers.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        set_field(&mut ticket, header, cell).map_err(|error| match error {
            CliError::Local(message) => message,
            other => other.render(),
        })?;
    }
    Ok(ImportItem {
        ticket: Some(ticket),
        ..ImportItem::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_are_tickets_or_items() {
        let bare = parse_ndjson(r#"{"subject": "a", "externalId": "Z-1"}"#).unwrap();
        assert_eq!(bare.ticket.unwrap().external_id, "Z-1");
        let item = parse_ndjson(
            r#"{"ticket": {"subject": "a", "external_id": "Z-2"}, "comments": [{"body": "hi", "visibility": "PUBLIC"}]}"#,
        )
        .unwrap();
        assert_eq!(item.comments.len(), 1);
        assert!(
            parse_ndjson("{not json")
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(
            parse_ndjson(r#"{"subjekt": "a"}"#)
                .unwrap_err()
                .starts_with("not a ticket")
        );
    }

    #[test]
    fn csv_cells_are_fields() {
        let headers = vec![
            "subject".to_owned(),
            "priority".to_owned(),
            "hs_x".to_owned(),
        ];
        let record = csv::StringRecord::from(vec!["printer", "high", ""]);
        let ticket = csv_item(&headers, &record).unwrap().ticket.unwrap();
        assert_eq!(ticket.subject, "printer");
        assert!(ticket.properties.is_empty());
        let bad = csv::StringRecord::from(vec!["x", "very", ""]);
        assert!(csv_item(&headers, &bad).is_err());
    }
}
