//! `raw-broadcast`: the yardstick for `watch-fanout`. A bare tonic server-streaming broadcast, in its own
//! process (`--serve-raw-broadcast ADDR`) so that its memory is measured as ticketd's is: each UpdateTicket
//! call stamps a pre-built `TicketEvent` of the shape WatchTickets sends and puts it on a tokio broadcast
//! channel; each WatchTickets stream forwards what the channel carries, encoded by tonic-prost as any tonic
//! service's messages are. No database, no filter, no authentication: what is left is the cost of tonic,
//! h2 and the kernel for the same streams, messages and connections.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    task::{Context, Poll},
    time::SystemTime,
};

use ticketd::proto::{
    FieldChange, Priority, Ticket, TicketEvent, TicketEventKind, UpdateTicketRequest,
    WatchTicketsRequest,
};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::Stream;
use tonic::{
    Request, Response, Status,
    codegen::{Body, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, ServerStreamingService, UnaryService},
};
use tonic_prost::ProstCodec;

/// Events a stream may fall behind; as ticketd's hub.
const CHANNEL_CAPACITY: usize = 4_096;

/// Serves `/ticketd.v1.TicketService/WatchTickets` and `/UpdateTicket` on `addr` until killed.
pub async fn serve(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
    let service = RawBroadcast(Arc::new(Shared {
        events,
        next_event_id: AtomicI64::new(1),
        template: template(),
    }));
    tonic::transport::Server::builder()
        .add_service(service)
        .serve(addr)
        .await?;
    Ok(())
}

struct Shared {
    events: broadcast::Sender<Arc<TicketEvent>>,
    next_event_id: AtomicI64,
    template: TicketEvent,
}

/// An UPDATED event of ticket 1's `content`, with the ticket's snapshot, as ticketd sends one for the
/// hot ticket `watch-fanout` writes (the tool prints the messages' mean size for both scenarios).
fn template() -> TicketEvent {
    let now = prost_types::Timestamp::from(SystemTime::now());
    TicketEvent {
        event_id: 0,
        ticket_id: 1,
        kind: TicketEventKind::Updated.into(),
        changes: vec![FieldChange {
            field: "content".to_owned(),
            old_value: "write 0".to_owned(),
            new_value: "write 1".to_owned(),
        }],
        actor_id: "anonymous".to_owned(),
        create_time: Some(now),
        ticket: Some(Ticket {
            id: 1,
            subject: "bench seed 0".to_owned(),
            content: "write 1".to_owned(),
            pipeline_id: 0,
            stage_id: 1,
            priority: Priority::Medium.into(),
            tags: vec!["bench".to_owned()],
            properties: BTreeMap::new(),
            create_time: Some(now),
            update_time: Some(now),
            etag: "0123456789abcdef".to_owned(),
            ..Default::default()
        }),
        side_effects: None,
        ..Default::default()
    }
}

#[derive(Clone)]
struct RawBroadcast(Arc<Shared>);

impl NamedService for RawBroadcast {
    const NAME: &'static str = "ticketd.v1.TicketService";
}

impl<B> Service<http::Request<B>> for RawBroadcast
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    // As tonic-build generates it for these two methods.
    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.0);
        match request.uri().path() {
            "/ticketd.v1.TicketService/WatchTickets" => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<TicketEvent, WatchTicketsRequest>::default());
                Ok(grpc.server_streaming(Watch(shared), request).await)
            }),
            "/ticketd.v1.TicketService/UpdateTicket" => Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<Ticket, UpdateTicketRequest>::default());
                Ok(grpc.unary(Update(shared), request).await)
            }),
            _ => Box::pin(async { Ok(Status::unimplemented("raw-broadcast").into_http()) }),
        }
    }
}

struct Watch(Arc<Shared>);

type Events = Pin<Box<dyn Stream<Item = Result<TicketEvent, Status>> + Send>>;

impl ServerStreamingService<WatchTicketsRequest> for Watch {
    type Response = TicketEvent;
    type ResponseStream = Events;
    type Future = BoxFuture<Response<Events>, Status>;

    fn call(&mut self, _request: Request<WatchTicketsRequest>) -> Self::Future {
        let receiver = self.0.events.subscribe();
        Box::pin(async move {
            let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) => return Some((Ok(TicketEvent::clone(&event)), receiver)),
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            });
            Ok(Response::new(Box::pin(events) as Events))
        })
    }
}

struct Update(Arc<Shared>);

impl UnaryService<UpdateTicketRequest> for Update {
    type Response = Ticket;
    type Future = BoxFuture<Response<Ticket>, Status>;

    fn call(&mut self, request: Request<UpdateTicketRequest>) -> Self::Future {
        let shared = Arc::clone(&self.0);
        Box::pin(async move {
            let content = request
                .into_inner()
                .ticket
                .map(|ticket| ticket.content)
                .unwrap_or_default();
            let mut event = shared.template.clone();
            event.event_id = shared.next_event_id.fetch_add(1, Ordering::Relaxed);
            event.create_time = Some(SystemTime::now().into());
            let ticket = event.ticket.get_or_insert_default();
            ticket.content.clone_from(&content);
            ticket.update_time = event.create_time;
            if let Some(change) = event.changes.first_mut() {
                change.new_value = content;
            }
            let ticket = ticket.clone();
            // No subscribers is not an error.
            let _ = shared.events.send(Arc::new(event));
            Ok(Response::new(ticket))
        })
    }
}
