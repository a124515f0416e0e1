//! `ticketd.v1.PortalService`.

use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, caller::viewer, decode_page_token, encode_page_token, idempotent_requests,
    origin, query_fingerprint, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        access::{Portal, PortalChanges, PortalSettings, VisibilityRules},
        page::{Cursor, page_size},
    },
    proto::{self, portal_service_server::PortalService},
    store::Store,
};

idempotent_requests! {
    proto::CreatePortalRequest => "ticketd.v1.PortalService/CreatePortal",
    proto::UpdatePortalRequest => "ticketd.v1.PortalService/UpdatePortal",
    proto::DeletePortalRequest => "ticketd.v1.PortalService/DeletePortal",
}

const UPDATABLE_PATHS: &[&str] = &[
    "name",
    "requested_tickets",
    "followed_tickets",
    "organization_tickets",
    "followed_project_tickets",
    "ticket_types",
    "visible_properties",
    "editable_properties",
    "time_logging",
];
const OUTPUT_ONLY_PATHS: &[&str] = &["id", "etag", "create_time", "update_time"];

/// Serves customer portals from the store.
pub struct PortalApi {
    store: Store,
}

impl PortalApi {
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl PortalService for PortalApi {
    async fn create_portal(
        &self,
        request: Request<proto::CreatePortalRequest>,
    ) -> Result<Response<proto::Portal>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let portal = request
            .into_inner()
            .portal
            .ok_or_else(|| Error::invalid("portal", "is required"))?;
        let settings = settings_from_proto(portal);
        let created = self
            .store
            .create_portal(settings, &origin)
            .await
            .map_err(|error| error.within("portal"))?;
        Ok(Response::new(portal_to_proto(created)))
    }

    async fn get_portal(
        &self,
        request: Request<proto::GetPortalRequest>,
    ) -> Result<Response<proto::Portal>, Status> {
        let id = request.get_ref().id;
        viewer(request.extensions())?.check_portal_read(id)?;
        Ok(Response::new(portal_to_proto(
            self.store.get_portal(id).await?,
        )))
    }

    async fn list_portals(
        &self,
        request: Request<proto::ListPortalsRequest>,
    ) -> Result<Response<proto::ListPortalsResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint("portals");
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let page = self.store.list_portals(page_size, after).await?;
        Ok(Response::new(proto::ListPortalsResponse {
            portals: page.items.into_iter().map(portal_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_portal(
        &self,
        request: Request<proto::UpdatePortalRequest>,
    ) -> Result<Response<proto::Portal>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let portal = request
            .portal
            .ok_or_else(|| Error::invalid("portal", "is required"))?;
        if portal.id == 0 {
            return Err(Error::invalid("portal.id", "is required").into());
        }
        let (id, etag) = (portal.id, portal.etag.clone());
        let changes = changes_from_proto(portal, request.update_mask)?;
        let updated = self
            .store
            .update_portal(id, &etag, changes, &origin)
            .await
            .map_err(|error| error.within("portal"))?;
        Ok(Response::new(portal_to_proto(updated)))
    }

    async fn delete_portal(
        &self,
        request: Request<proto::DeletePortalRequest>,
    ) -> Result<Response<proto::DeletePortalResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        self.store
            .delete_portal(request.id, &request.etag, &origin)
            .await?;
        Ok(Response::new(proto::DeletePortalResponse {}))
    }
}

fn settings_from_proto(portal: proto::Portal) -> PortalSettings {
    PortalSettings {
        name: portal.name,
        rules: VisibilityRules {
            requested: portal.requested_tickets,
            followed: portal.followed_tickets,
            organization: portal.organization_tickets,
            followed_projects: portal.followed_project_tickets,
        },
        ticket_types: portal.ticket_types,
        visible_properties: portal.visible_properties,
        editable_properties: portal.editable_properties,
        time_logging: portal.time_logging,
    }
}

/// With an empty mask, every field the request sets (AIP-134); flags set to false need a mask.
fn fields_set(portal: &proto::Portal) -> Vec<&'static str> {
    let mut paths = Vec::new();
    let mut add = |is_set: bool, path: &'static str| {
        if is_set {
            paths.push(path);
        }
    };
    add(!portal.name.is_empty(), "name");
    add(portal.requested_tickets, "requested_tickets");
    add(portal.followed_tickets, "followed_tickets");
    add(portal.organization_tickets, "organization_tickets");
    add(portal.followed_project_tickets, "followed_project_tickets");
    add(!portal.ticket_types.is_empty(), "ticket_types");
    add(!portal.visible_properties.is_empty(), "visible_properties");
    add(
        !portal.editable_properties.is_empty(),
        "editable_properties",
    );
    add(portal.time_logging, "time_logging");
    paths
}

fn changes_from_proto(
    portal: proto::Portal,
    mask: Option<prost_types::FieldMask>,
) -> Result<PortalChanges, Error> {
    let mut changes = PortalChanges::default();
    for path in update_paths(mask, || fields_set(&portal)) {
        match path.as_str() {
            "name" => changes.name = Some(portal.name.clone()),
            "requested_tickets" => changes.requested = Some(portal.requested_tickets),
            "followed_tickets" => changes.followed = Some(portal.followed_tickets),
            "organization_tickets" => changes.organization = Some(portal.organization_tickets),
            "followed_project_tickets" => {
                changes.followed_projects = Some(portal.followed_project_tickets)
            }
            "ticket_types" => changes.ticket_types = Some(portal.ticket_types.clone()),
            "visible_properties" => {
                changes.visible_properties = Some(portal.visible_properties.clone())
            }
            "editable_properties" => {
                changes.editable_properties = Some(portal.editable_properties.clone())
            }
            "time_logging" => changes.time_logging = Some(portal.time_logging),
            other => return Err(bad_mask_path(other, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS)),
        }
    }
    Ok(changes)
}

fn portal_to_proto(portal: Portal) -> proto::Portal {
    proto::Portal {
        etag: portal.etag(),
        id: portal.id,
        name: portal.name,
        requested_tickets: portal.rules.requested,
        followed_tickets: portal.rules.followed,
        organization_tickets: portal.rules.organization,
        followed_project_tickets: portal.rules.followed_projects,
        ticket_types: portal.ticket_types,
        visible_properties: portal.visible_properties,
        editable_properties: portal.editable_properties,
        time_logging: portal.time_logging,
        create_time: Some(timestamp(portal.create_time)),
        update_time: Some(timestamp(portal.update_time)),
    }
}
