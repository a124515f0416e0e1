//! One connection to the server, and clients of each service whose calls carry the bearer token.

use std::time::Duration;

use ticketd::proto::{
    agent_service_client::AgentServiceClient, association_service_client::AssociationServiceClient,
    card_service_client::CardServiceClient, pipeline_service_client::PipelineServiceClient,
    portal_service_client::PortalServiceClient, property_service_client::PropertyServiceClient,
    ticket_service_client::TicketServiceClient,
};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::error::CliError;

/// How long connecting may take before the command fails with UNAVAILABLE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel whose calls carry the token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to every call when a token was given.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The connected server.
#[derive(Debug, Clone)]
pub struct Server {
    channel: Channel,
    bearer: Bearer,
}

impl Server {
    /// Connects to `addr` (`http://` is assumed when no scheme is given).
    pub async fn connect(addr: &str, token: Option<&str>) -> Result<Self, CliError> {
        let bearer = match token.map(str::trim).filter(|token| !token.is_empty()) {
            None => Bearer(None),
            Some(token) => {
                Bearer(Some(format!("Bearer {token}").parse().map_err(|_| {
                    CliError::local("the token must be printable ASCII")
                })?))
            }
        };
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|error| CliError::local(format!("--addr {addr:?} is not a URI: {error}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|error| {
            CliError::Rpc(Status::unavailable(format!(
                "cannot connect to {addr}: {}",
                source_chain(&error)
            )))
        })?;
        Ok(Self { channel, bearer })
    }

    /// TicketService.
    pub fn tickets(&self) -> TicketServiceClient<Authed> {
        TicketServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// PipelineService.
    pub fn pipelines(&self) -> PipelineServiceClient<Authed> {
        PipelineServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// PropertyService.
    pub fn properties(&self) -> PropertyServiceClient<Authed> {
        PropertyServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// PortalService.
    pub fn portals(&self) -> PortalServiceClient<Authed> {
        PortalServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// AgentService.
    pub fn agents(&self) -> AgentServiceClient<Authed> {
        AgentServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// AssociationService.
    pub fn associations(&self) -> AssociationServiceClient<Authed> {
        AssociationServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    /// CardService.
    pub fn cards(&self) -> CardServiceClient<Authed> {
        CardServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

/// An error and its sources on one line: tonic's own message ("transport error") says little alone.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
