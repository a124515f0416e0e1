//! Requests that do not decode or are over `--max-message-bytes` (issue 16, item 4): the first are the client's
//! fault (INVALID_ARGUMENT naming `request`, not INTERNAL), the second RESOURCE_EXHAUSTED (gRPC's status code
//! table, not OUT_OF_RANGE), on unary and streaming methods alike, and neither harms the connection.
//! The bytes go out through `tonic::client::Grpc` with a codec that sends them as they are.

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use ticketd::proto::{CreateTicketRequest, Ticket, WatchTicketsRequest};
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

use crate::support::*;

both_databases!(
    undecodable_requests_are_invalid_argument_on_every_kind_of_method,
    a_message_over_the_limit_is_resource_exhausted,
    the_limit_counts_bytes_before_decoding,
    an_oversized_stream_request_is_resource_exhausted,
);

/// Methods of several services: unary reads and writes, and a server stream.
const METHODS: [&str; 5] = [
    "/ticketd.v1.TicketService/CreateTicket",
    "/ticketd.v1.TicketService/GetTicket",
    "/ticketd.v1.PipelineService/ListPipelines",
    "/ticketd.v1.CardService/CreateCardTemplate",
    "/ticketd.v1.TicketService/WatchTickets",
];

/// Not protobuf: an unterminated varint, an impossible wire type, a length past the end, and a field whose
/// tag is 0.
const GARBAGE: [&[u8]; 4] = [&[0xff; 11], &[0x0f], &[0x0a, 0x05, 0x01], &[0x00, 0x00]];

/// The limit of the servers these tests start for the size checks.
const LIMIT: usize = 64 * 1024;

/// Sends `body` as the one message of a call to `method`, as the test admin; a stream's first item (or its
/// end) is the answer.
async fn call_raw(app: &TestApp, method: &str, body: Bytes) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel());
    grpc.ready().await.expect("the channel is ready");
    let request = with_token(body, &admin_token(TEST_ADMIN));
    let path = PathAndQuery::try_from(method).expect("a method path");
    if method.ends_with("/WatchTickets") {
        let mut stream = grpc
            .server_streaming(request, path, RawCodec)
            .await?
            .into_inner();
        stream.message().await.map(drop)
    } else {
        grpc.unary(request, path, RawCodec).await.map(drop)
    }
}

async fn undecodable_requests_are_invalid_argument_on_every_kind_of_method(app: TestApp) {
    for method in METHODS {
        for garbage in GARBAGE {
            let result = call_raw(&app, method, Bytes::from_static(garbage)).await;
            let status = result.expect_err("garbage must be refused");
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{method} with {garbage:?}: {:?}",
                status.message()
            );
            assert_field_violation(&status, "request");
            assert!(
                status.message().contains("decode"),
                "{method}: the message says the request did not decode: {:?}",
                status.message()
            );
        }
    }
    let created = app.create_ticket(ticket("after the garbage")).await;
    assert_eq!(app.get_ticket(created.id).await, created);
}

async fn a_message_over_the_limit_is_resource_exhausted(app: TestApp) {
    // Restarted, not beside it: one server per SQLite file.
    let small = app
        .reconfigured(|config| {
            config.max_message_bytes = LIMIT as u32;
        })
        .await;
    let oversized = create_ticket_req(Ticket {
        content: "x".repeat(LIMIT),
        ..ticket("too long to read")
    });
    let status = assert_code(
        small.tickets().create_ticket(oversized).await,
        Code::ResourceExhausted,
    );
    assert!(
        status.message().contains(&LIMIT.to_string()),
        "the message names the limit: {:?}",
        status.message()
    );

    // The same connection serves the next call, and a message under the limit is read.
    let fits = create_ticket_req(Ticket {
        content: "x".repeat(LIMIT / 2),
        ..ticket("short enough")
    });
    let created = ok(small.tickets().create_ticket(fits).await);
    assert_eq!(created.content.len(), LIMIT / 2);
    small.shutdown().await;
}

async fn the_limit_counts_bytes_before_decoding(app: TestApp) {
    // Restarted, not beside it: one server per SQLite file.
    let small = app
        .reconfigured(|config| {
            config.max_message_bytes = LIMIT as u32;
        })
        .await;
    // Zero bytes do not decode: at the limit that is what the client hears, one byte over it the size.
    let method = METHODS[0];
    let at_limit = call_raw(&small, method, Bytes::from(vec![0; LIMIT])).await;
    assert_eq!(
        at_limit.map_err(|status| status.code()),
        Err(Code::InvalidArgument)
    );
    let over = call_raw(&small, method, Bytes::from(vec![0; LIMIT + 1])).await;
    assert_eq!(
        over.map_err(|status| status.code()),
        Err(Code::ResourceExhausted)
    );
    small.shutdown().await;
}

async fn an_oversized_stream_request_is_resource_exhausted(app: TestApp) {
    // Restarted, not beside it: one server per SQLite file.
    let small = app
        .reconfigured(|config| {
            config.max_message_bytes = LIMIT as u32;
        })
        .await;
    let request = WatchTicketsRequest {
        assignee_id: "a".repeat(LIMIT),
        ..Default::default()
    };
    let status = small
        .tickets()
        .watch_tickets(request)
        .await
        .expect_err("an oversized request opens no stream");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let created = ok(small
        .tickets()
        .create_ticket(CreateTicketRequest {
            ticket: Some(ticket("still served")),
            ..Default::default()
        })
        .await);
    assert_eq!(created.subject, "still served");
    small.shutdown().await;
}

/// Sends bytes as the message and reads the answer's bytes back, unparsed.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}
