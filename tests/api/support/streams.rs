//! Reading server streams (WatchTickets, WatchCard) with a timeout on every message, and the resume trailer
//! a WatchTickets stream ends with.

use std::time::Duration;

use ticketd::proto::TicketEvent;
use tonic::{Code, Response, Status, Streaming};

/// How long a test waits for one message of a stream before failing (instead of hanging).
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The trailer of a WatchTickets stream that ends with UNAVAILABLE.
pub const RESUME_TRAILER: &str = "ticketd-resume-after-event-id";

/// Opens a call that answers with a stream, failing the test if it does not answer within [`STREAM_TIMEOUT`].
pub async fn open_stream<T>(
    call: impl Future<Output = Result<Response<Streaming<T>>, Status>>,
    what: &str,
) -> Result<Streaming<T>, Status> {
    match tokio::time::timeout(STREAM_TIMEOUT, call).await {
        Ok(result) => result.map(Response::into_inner),
        Err(_) => panic!("{what}: the call did not answer within {STREAM_TIMEOUT:?}"),
    }
}

/// The next item of a stream: `Ok(Some(message))`, `Ok(None)` at a clean end, `Err(status)` at an error end.
/// Panics when nothing arrives within [`STREAM_TIMEOUT`].
pub async fn next_item<T>(stream: &mut Streaming<T>, what: &str) -> Result<Option<T>, Status> {
    match tokio::time::timeout(STREAM_TIMEOUT, stream.message()).await {
        Ok(item) => item,
        Err(_) => panic!("{what}: nothing arrived within {STREAM_TIMEOUT:?}"),
    }
}

/// The next message, which must arrive within [`STREAM_TIMEOUT`].
pub async fn next_message<T>(stream: &mut Streaming<T>, what: &str) -> T {
    match next_item(stream, what).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("{what}: the stream ended (OK) instead of sending a message"),
        Err(status) => panic!(
            "{what}: the stream ended with {:?} {:?} instead of sending a message",
            status.code(),
            status.message()
        ),
    }
}

/// The next `count` messages.
pub async fn next_messages<T>(stream: &mut Streaming<T>, count: usize, what: &str) -> Vec<T> {
    let mut messages = Vec::with_capacity(count);
    for i in 0..count {
        messages
            .push(next_message(stream, &format!("{what} (message {} of {count})", i + 1)).await);
    }
    messages
}

/// The value of the resume trailer of an UNAVAILABLE status; panics when it is missing or not a number.
#[track_caller]
pub fn resume_after(status: &Status) -> i64 {
    let value = status.metadata().get(RESUME_TRAILER).unwrap_or_else(|| {
        panic!(
            "status {:?} {:?} carries no {RESUME_TRAILER} trailer (metadata: {:?})",
            status.code(),
            status.message(),
            status.metadata()
        )
    });
    let text = value
        .to_str()
        .unwrap_or_else(|_| panic!("{RESUME_TRAILER} is not ASCII: {value:?}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{RESUME_TRAILER} is not an event id: {text:?}"))
}

/// Reads a stream to its end, which must be UNAVAILABLE with the resume trailer: the messages that came
/// first and the trailer's event id.
pub async fn read_until_unavailable(
    stream: &mut Streaming<TicketEvent>,
    what: &str,
) -> (Vec<TicketEvent>, i64) {
    let mut events = Vec::new();
    loop {
        match next_item(stream, what).await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => panic!(
                "{what}: the stream ended with OK after {} events; expected UNAVAILABLE with {RESUME_TRAILER}",
                events.len()
            ),
            Err(status) => {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "{what}: the stream must end with UNAVAILABLE (message {:?}, after {} events)",
                    status.message(),
                    events.len()
                );
                let resume = resume_after(&status);
                return (events, resume);
            }
        }
    }
}
