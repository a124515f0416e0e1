//! Heartbeats on server streams: a message after a stretch of silence, so that proxies and browsers (which
//! close idle HTTP/1.1 gRPC-Web responses, never seeing HTTP/2 pings) keep a quiet stream open, and a client
//! can tell a quiet stream from a dead one.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::Stream;
use tokio::time::{Instant, Sleep};
use tonic::Status;

/// `inner`, plus `beat()` whenever `every` passes without a message. The clock restarts with each message
/// the client is sent, so a busy stream sends no heartbeats; it stops after the first error or the end.
pub struct Heartbeats<S, T> {
    inner: S,
    every: Duration,
    silence: Pin<Box<Sleep>>,
    beat: fn() -> T,
    done: bool,
}

impl<S, T> Heartbeats<S, T> {
    /// Heartbeats of `beat()` on `inner` after `every` of silence.
    pub fn new(inner: S, every: Duration, beat: fn() -> T) -> Self {
        Self {
            inner,
            every,
            silence: Box::pin(tokio::time::sleep(every)),
            beat,
            done: false,
        }
    }
}

impl<S, T> Stream for Heartbeats<S, T>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let deadline = Instant::now() + this.every;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                // The status is the stream's last word: no heartbeat may follow it.
                this.done = item.is_err();
                this.silence.as_mut().reset(deadline);
                return Poll::Ready(Some(item));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        match this.silence.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.silence.as_mut().reset(deadline);
                Poll::Ready(Some(Ok((this.beat)())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio_stream::wrappers::ReceiverStream;

    use super::*;

    #[tokio::test]
    async fn beats_only_in_silence_and_never_after_the_status() {
        let every = Duration::from_millis(300);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<u32, Status>>(4);
        let mut stream = Heartbeats::new(ReceiverStream::new(rx), every, || 0);
        tx.send(Ok(1)).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        let start = Instant::now();
        assert_eq!(stream.next().await.unwrap().unwrap(), 0, "a heartbeat");
        assert!(start.elapsed() >= every);
        // Messages keep coming faster than `every`: no heartbeat between them.
        for message in 2..6 {
            tokio::time::sleep(every / 3).await;
            tx.send(Ok(message)).await.unwrap();
            assert_eq!(stream.next().await.unwrap().unwrap(), message);
        }
        tx.send(Err(Status::unavailable("bye"))).await.unwrap();
        assert!(stream.next().await.unwrap().is_err());
        assert!(stream.next().await.is_none());
    }
}
