//! `ticketd.v1.TicketService` as served: the generated server, except for WatchTickets, whose messages arrive
//! encoded (see `watch.rs`). The generated server makes every method's messages `proto` types and encodes them
//! itself, once per stream; this route hands tonic the shared bytes instead. It sits where the generated
//! server sat, under the same name, so every layer of the server applies to both alike.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tonic::{
    Request, Response, Status,
    codegen::{Body, BoxFuture, Service, StdError, http},
    server::{Grpc, NamedService, ServerStreamingService},
};

use super::{TicketApi, watch::EncodedEvents};
use crate::{
    api::{caller::viewer, codec::PreEncodedCodec},
    proto::{self, ticket_service_server::TicketServiceServer},
};

const WATCH_TICKETS: &str = "/ticketd.v1.TicketService/WatchTickets";

/// TicketService with WatchTickets served from pre-encoded messages.
#[derive(Clone)]
pub struct TicketRoutes {
    api: Arc<TicketApi>,
    generated: TicketServiceServer<TicketApi>,
    max_decoding_message_size: Option<usize>,
}

impl TicketRoutes {
    pub fn new(api: TicketApi) -> Self {
        let api = Arc::new(api);
        Self {
            generated: TicketServiceServer::from_arc(Arc::clone(&api)),
            api,
            max_decoding_message_size: None,
        }
    }

    /// Limits the size of a decoded request, WatchTickets' included.
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> Self {
        self.generated = self.generated.max_decoding_message_size(limit);
        self.max_decoding_message_size = Some(limit);
        self
    }
}

impl NamedService for TicketRoutes {
    const NAME: &'static str = <TicketServiceServer<TicketApi> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for TicketRoutes
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != WATCH_TICKETS {
            return self.generated.call(request);
        }
        let method = WatchTickets(Arc::clone(&self.api));
        let max_decoding = self.max_decoding_message_size;
        Box::pin(async move {
            // What the generated server does for a streaming method, but for the codec (and no compression,
            // which the generated server is not configured with either).
            let mut grpc = Grpc::new(PreEncodedCodec::<proto::WatchTicketsRequest>::default())
                .apply_max_message_size_config(max_decoding, None);
            Ok(grpc.server_streaming(method, request).await)
        })
    }
}

struct WatchTickets(Arc<TicketApi>);

impl ServerStreamingService<proto::WatchTicketsRequest> for WatchTickets {
    type Response = Bytes;
    type ResponseStream = EncodedEvents;
    type Future = BoxFuture<Response<EncodedEvents>, Status>;

    fn call(&mut self, request: Request<proto::WatchTicketsRequest>) -> Self::Future {
        let api = Arc::clone(&self.0);
        Box::pin(async move { api.watch_encoded(request).await.map(Response::new) })
    }
}

impl TicketApi {
    /// A WatchTickets call, answered with encoded messages.
    pub(super) async fn watch_encoded(
        &self,
        request: Request<proto::WatchTicketsRequest>,
    ) -> Result<EncodedEvents, Status> {
        let viewer = viewer(request.extensions())?;
        Ok(self.watch(request.into_inner(), viewer).await?)
    }
}
