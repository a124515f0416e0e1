//! `ticketd.v1.AgentService`.

use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, decode_page_token, encode_page_token, idempotent_requests, origin,
    query_fingerprint, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        agent::{Agent, AgentChanges, AgentFilter, NewAgent, email_key},
        page::page_size,
    },
    proto::{self, agent_service_server::AgentService},
    store::Store,
};

idempotent_requests! {
    proto::CreateAgentRequest => "ticketd.v1.AgentService/CreateAgent",
    proto::UpdateAgentRequest => "ticketd.v1.AgentService/UpdateAgent",
    proto::DeactivateAgentRequest => "ticketd.v1.AgentService/DeactivateAgent",
}

const UPDATABLE_PATHS: &[&str] = &["email", "display_name", "active"];
const OUTPUT_ONLY_PATHS: &[&str] = &["id", "etag", "create_time", "update_time"];

/// Serves the agent directory from the store.
pub struct AgentApi {
    store: Store,
}

impl AgentApi {
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn create_agent(
        &self,
        request: Request<proto::CreateAgentRequest>,
    ) -> Result<Response<proto::Agent>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let agent = request
            .into_inner()
            .agent
            .ok_or_else(|| Error::invalid("agent", "is required"))?;
        // `active`, `etag` and the times are output only: a new agent is active whatever the request says.
        let new = NewAgent {
            id: agent.id,
            email: agent.email,
            display_name: agent.display_name,
        };
        let created = self
            .store
            .create_agent(new, &origin)
            .await
            .map_err(within_agent)?;
        Ok(Response::new(agent_to_proto(created)))
    }

    async fn get_agent(
        &self,
        request: Request<proto::GetAgentRequest>,
    ) -> Result<Response<proto::Agent>, Status> {
        let id = required_id(&request.get_ref().id)?;
        Ok(Response::new(agent_to_proto(
            self.store.get_agent(id).await?,
        )))
    }

    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let filter = AgentFilter {
            email: (!request.email.is_empty()).then(|| email_key(&request.email)),
            active: active_filter(request.active)?,
        };
        // The key, not the address as sent: paging on with the same address in other letter case is the same
        // query.
        let query = query_fingerprint(&format!(
            "agents order=id email={:?} active={:?}",
            filter.email, filter.active
        ));
        let after: Option<String> = decode_page_token(&query, &request.page_token)?;
        let page = self.store.list_agents(page_size, after, &filter).await?;
        Ok(Response::new(proto::ListAgentsResponse {
            agents: page.items.into_iter().map(agent_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_agent(
        &self,
        request: Request<proto::UpdateAgentRequest>,
    ) -> Result<Response<proto::Agent>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let agent = request
            .agent
            .ok_or_else(|| Error::invalid("agent", "is required"))?;
        if agent.id.is_empty() {
            return Err(Error::invalid("agent.id", "is required").into());
        }
        let (id, etag) = (agent.id.clone(), agent.etag.clone());
        let changes = changes_from_proto(agent, request.update_mask)?;
        let updated = self
            .store
            .update_agent(&id, &etag, changes, &origin)
            .await
            .map_err(within_agent)?;
        Ok(Response::new(agent_to_proto(updated)))
    }

    async fn deactivate_agent(
        &self,
        request: Request<proto::DeactivateAgentRequest>,
    ) -> Result<Response<proto::Agent>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let id = required_id(&request.id)?;
        let deactivated = self
            .store
            .deactivate_agent(id, &request.etag, &origin)
            .await?;
        Ok(Response::new(agent_to_proto(deactivated)))
    }
}

/// The `id` of a request naming one agent.
fn required_id(id: &str) -> Result<&str, Error> {
    if id.is_empty() {
        return Err(Error::invalid("id", "is required"));
    }
    Ok(id)
}

fn active_filter(raw: i32) -> Result<Option<bool>, Error> {
    match proto::ActiveFilter::try_from(raw) {
        Ok(proto::ActiveFilter::Unspecified) => Ok(None),
        Ok(proto::ActiveFilter::Active) => Ok(Some(true)),
        Ok(proto::ActiveFilter::Inactive) => Ok(Some(false)),
        Err(_) => Err(Error::invalid(
            "active",
            format!("unknown value {raw}; use ACTIVE_FILTER_ACTIVE or ACTIVE_FILTER_INACTIVE"),
        )),
    }
}

/// Names the request field an error is about: `agent.email` both for a malformed address and for one another
/// agent holds, so a client finds the field to fix the same way for either.
fn within_agent(error: Error) -> Error {
    match error {
        Error::AlreadyExists {
            resource,
            field,
            value,
        } => Error::AlreadyExists {
            resource,
            field: format!("agent.{field}"),
            value,
        },
        other => other.within("agent"),
    }
}

/// With an empty mask, every field the request sets (AIP-134); `active: false` needs a mask.
fn fields_set(agent: &proto::Agent) -> Vec<&'static str> {
    let mut paths = Vec::new();
    if !agent.email.is_empty() {
        paths.push("email");
    }
    if !agent.display_name.is_empty() {
        paths.push("display_name");
    }
    if agent.active {
        paths.push("active");
    }
    paths
}

fn changes_from_proto(
    agent: proto::Agent,
    mask: Option<prost_types::FieldMask>,
) -> Result<AgentChanges, Error> {
    let mut changes = AgentChanges::default();
    for path in update_paths(mask, || fields_set(&agent)) {
        match path.as_str() {
            "email" => changes.email = Some(agent.email.clone()),
            "display_name" => changes.display_name = Some(agent.display_name.clone()),
            "active" => changes.active = Some(agent.active),
            other => return Err(bad_mask_path(other, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS)),
        }
    }
    Ok(changes)
}

fn agent_to_proto(agent: Agent) -> proto::Agent {
    proto::Agent {
        id: agent.id,
        email: agent.email,
        display_name: agent.display_name,
        active: agent.active,
        create_time: Some(timestamp(agent.create_time)),
        update_time: Some(timestamp(agent.update_time)),
        etag: agent.etag,
    }
}
