//! A request message over `--max-message-bytes` is RESOURCE_EXHAUSTED (gRPC's status code table, where tonic
//! says OUT_OF_RANGE), refused from its length prefix before anything is buffered. The layer wraps the whole
//! server, so it holds for every method, unary or streaming.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

/// Refuses a request message longer than `limit` bytes with RESOURCE_EXHAUSTED as soon as its length prefix
/// arrives, before anything is buffered. Inside gRPC-Web, whose bodies it sees once translated.
#[derive(Debug, Clone, Copy)]
pub struct MessageSizeLayer {
    limit: usize,
}

impl MessageSizeLayer {
    /// Messages of at most `limit` bytes pass.
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> tower_layer::Layer<S> for MessageSizeLayer {
    type Service = MessageSize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSize {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`MessageSizeLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct MessageSize<S> {
    inner: S,
    limit: usize,
}

impl<S, B> tower_service::Service<http::Request<B>> for MessageSize<S>
where
    S: tower_service::Service<http::Request<tonic::body::Body>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        self.inner.call(request.map(|body| {
            tonic::body::Body::new(SizedBody {
                inner: tonic::body::Body::new(body),
                frames: FrameScan::new(limit),
            })
        }))
    }
}

/// A request body whose gRPC messages are checked against the limit as their length prefixes pass by.
struct SizedBody {
    inner: tonic::body::Body,
    frames: FrameScan,
}

impl Body for SizedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(length) = this.frames.scan(data)
        {
            // A status as the body's error reaches the client as it is: tonic looks for one in the error.
            return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                "request message is {length} bytes, over the limit of {} bytes",
                this.frames.limit
            )))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a gRPC body is in its framing: each message is a flag byte, a 4-byte big-endian length, then the
/// message; frames of the body split these anywhere.
#[derive(Debug)]
struct FrameScan {
    limit: usize,
    prefix: [u8; PREFIX_LEN],
    prefix_read: usize,
    /// Bytes of the current message still to pass.
    message_left: usize,
}

const PREFIX_LEN: usize = 5;

impl FrameScan {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            prefix: [0; PREFIX_LEN],
            prefix_read: 0,
            message_left: 0,
        }
    }

    /// Follows the framing through `data`; the length of the first message over the limit is the error.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), usize> {
        while !data.is_empty() {
            if self.message_left > 0 {
                let passed = self.message_left.min(data.len());
                self.message_left -= passed;
                data = &data[passed..];
                continue;
            }
            let taken = (PREFIX_LEN - self.prefix_read).min(data.len());
            self.prefix[self.prefix_read..self.prefix_read + taken].copy_from_slice(&data[..taken]);
            self.prefix_read += taken;
            data = &data[taken..];
            if self.prefix_read == PREFIX_LEN {
                self.prefix_read = 0;
                let [_, a, b, c, d] = self.prefix;
                let length = u32::from_be_bytes([a, b, c, d]) as usize;
                if length > self.limit {
                    return Err(length);
                }
                self.message_left = length;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::FrameScan;

    fn message(length: u32) -> Vec<u8> {
        let mut framed = vec![0];
        framed.extend_from_slice(&length.to_be_bytes());
        framed.resize(5 + length as usize, 7);
        framed
    }

    #[test]
    fn messages_within_the_limit_pass_however_the_body_is_split() {
        let body = [message(10), message(0), message(10)].concat();
        for split in 1..body.len() {
            let mut scan = FrameScan::new(10);
            for chunk in body.chunks(split) {
                assert_eq!(scan.scan(chunk), Ok(()), "split every {split} bytes");
            }
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_prefix() {
        let body = [message(3), message(11)].concat();
        for split in 1..=8 {
            let mut scan = FrameScan::new(10);
            // Only the prefix of the long message is sent: the refusal must not wait for its bytes.
            let refused = body[..8 + 5]
                .chunks(split)
                .map(|chunk| scan.scan(chunk))
                .find(Result::is_err);
            assert_eq!(refused, Some(Err(11)), "split every {split} bytes");
        }
    }
}
