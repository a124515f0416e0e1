//! `import -f FILE`: NDJSON or CSV items streamed through ImportTickets, numbered by their line, with a progress
//! bar on stderr and a summary on stdout. A line that cannot be read is reported here and never sent; a line the
//! server refuses is reported from its answer; the rest is imported.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
};

use indicatif::{ProgressBar, ProgressStyle};
use ticketd::proto::{
    ImportItem, ImportOptions, ImportTicketsRequest, OnConflict, Ticket,
    import_tickets_request::Kind,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

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

    let (items, requests) = mpsc::channel(READ_AHEAD);
    let options = ImportOptions {
        on_conflict: match args.on_conflict {
            OnConflictArg::Skip => OnConflict::Skip,
            OnConflictArg::Update => OnConflict::Update,
        } as i32,
        ..ImportOptions::default()
    };
    // The channel is empty and open, so the first message always fits.
    let _ = items
        .send(ImportTicketsRequest {
            kind: Some(Kind::Options(options)),
        })
        .await;
    let reader = {
        let (path, bar) = (args.file.clone(), bar.clone());
        tokio::task::spawn_blocking(move || read_items(&path, format, &items, &bar))
    };

    let mut tally = Tally::default();
    let outcome = async {
        let mut answers = server
            .tickets()
            .import_tickets(ReceiverStream::new(requests))
            .await?
            .into_inner();
        while let Some(answer) = answers.message().await? {
            bar.inc(1);
            let Some(status) = answer.status else {
                tally.imported += 1;
                continue;
            };
            let status = status_of_item(&status);
            if status.code() == Code::AlreadyExists {
                tally.skipped += 1;
                continue;
            }
            tally.refused += 1;
            let mut report = format!("line {}: {}", answer.offset, describe_status(&status));
            for violation in violations(&status) {
                report.push_str("\n  ");
                report.push_str(&violation);
            }
            bar.suspend(|| eprintln!("{report}"));
        }
        Ok::<(), tonic::Status>(())
    }
    .await;
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
    items: &mpsc::Sender<ImportTicketsRequest>,
    bar: &ProgressBar,
) -> Result<u64, CliError> {
    let mut unreadable = 0;
    let mut handle = |line: u64, item: Result<ImportItem, String>| -> bool {
        match item {
            Ok(mut item) => {
                // The line number is the item's offset, echoed in its answer.
                item.offset = line as i64;
                // False when the stream is gone: the server stopped listening, which the answers will say.
                items
                    .blocking_send(ImportTicketsRequest {
                        kind: Some(Kind::Item(item)),
                    })
                    .is_ok()
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
