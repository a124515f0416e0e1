//! `ticketd.v1.AssociationService`, and the association conversions the ticket service shares.

use tonic::{Request, Response, Status};

use super::{
    check_batch_size, decode_page_token, encode_page_token, idempotent_requests, origin,
    query_fingerprint, timestamp,
};
use crate::{
    domain::{
        Error,
        association::{
            Association, AssociationSpec, AssociationType, Category, ObjectRef, TICKET_OBJECT_TYPE,
            check_object_type, parse_label,
        },
        page::{Cursor, page_size},
    },
    proto::{self, association_service_server::AssociationService},
    store::Store,
};

idempotent_requests! {
    proto::CreateAssociationTypeRequest => "ticketd.v1.AssociationService/CreateAssociationType",
    proto::CreateAssociationRequest => "ticketd.v1.AssociationService/CreateAssociation",
    proto::DeleteAssociationRequest => "ticketd.v1.AssociationService/DeleteAssociation",
    proto::BatchCreateAssociationsRequest => "ticketd.v1.AssociationService/BatchCreateAssociations",
}

/// Serves association types and links from the store.
pub struct AssociationApi {
    store: Store,
}

impl AssociationApi {
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl AssociationService for AssociationApi {
    async fn list_association_types(
        &self,
        request: Request<proto::ListAssociationTypesRequest>,
    ) -> Result<Response<proto::ListAssociationTypesResponse>, Status> {
        let request = request.into_inner();
        let filter = |field: &str, value: &str| -> Result<Option<String>, Error> {
            if value.is_empty() {
                return Ok(None);
            }
            check_object_type(field, value)?;
            Ok(Some(value.to_owned()))
        };
        let from = filter("from_object_type", &request.from_object_type)?;
        let to = filter("to_object_type", &request.to_object_type)?;
        let types = self
            .store
            .list_association_types(from.as_deref(), to.as_deref())
            .await?;
        Ok(Response::new(proto::ListAssociationTypesResponse {
            association_types: types.into_iter().map(type_to_proto).collect(),
        }))
    }

    async fn create_association_type(
        &self,
        request: Request<proto::CreateAssociationTypeRequest>,
    ) -> Result<Response<proto::AssociationType>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        check_object_type("from_object_type", &request.from_object_type)?;
        check_object_type("to_object_type", &request.to_object_type)?;
        if request.from_object_type != TICKET_OBJECT_TYPE
            && request.to_object_type != TICKET_OBJECT_TYPE
        {
            return Err(Error::invalid(
                "from_object_type",
                "one end of an association type must be \"ticket\"",
            )
            .into());
        }
        let new = AssociationType {
            id: 0,
            category: Category::User,
            label: parse_label("label", &request.label, true)?,
            inverse_label: parse_label("inverse_label", &request.inverse_label, false)?,
            from_object_type: request.from_object_type,
            to_object_type: request.to_object_type,
        };
        let created = self.store.create_association_type(new, &origin).await?;
        Ok(Response::new(type_to_proto(created)))
    }

    async fn create_association(
        &self,
        request: Request<proto::CreateAssociationRequest>,
    ) -> Result<Response<proto::Association>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let spec =
            spec_from_proto(request.association).map_err(|error| error.within("association"))?;
        let created = self
            .store
            .create_association(request.ticket_id, spec, &origin)
            .await?;
        Ok(Response::new(association_to_proto(created)))
    }

    async fn delete_association(
        &self,
        request: Request<proto::DeleteAssociationRequest>,
    ) -> Result<Response<proto::DeleteAssociationResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let spec =
            spec_from_proto(request.association).map_err(|error| error.within("association"))?;
        self.store
            .delete_association(request.ticket_id, spec, &origin)
            .await?;
        Ok(Response::new(proto::DeleteAssociationResponse {}))
    }

    async fn list_associations(
        &self,
        request: Request<proto::ListAssociationsRequest>,
    ) -> Result<Response<proto::ListAssociationsResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let to_type =
            (!request.to_object_type.is_empty()).then_some(request.to_object_type.as_str());
        if let Some(to_type) = to_type {
            check_object_type("to_object_type", to_type)?;
        }
        let query = query_fingerprint(&format!(
            "associations ticket={} to={:?}",
            request.ticket_id, to_type
        ));
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_associations(request.ticket_id, to_type, page_size, after)
            .await?;
        Ok(Response::new(proto::ListAssociationsResponse {
            associations: page.items.into_iter().map(association_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn batch_create_associations(
        &self,
        request: Request<proto::BatchCreateAssociationsRequest>,
    ) -> Result<Response<proto::BatchCreateAssociationsResponse>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        check_batch_size("requests", request.requests.len())?;
        let links = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                spec_from_proto(item.association)
                    .map(|spec| (item.ticket_id, spec))
                    .map_err(|error| error.within("association").in_batch("requests", index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let created = self.store.batch_create_associations(links, &origin).await?;
        Ok(Response::new(proto::BatchCreateAssociationsResponse {
            associations: created.into_iter().map(association_to_proto).collect(),
        }))
    }
}

/// Parses a link to make; errors name `to.object_type`, `to.object_id` or `association_type_id`.
pub(crate) fn spec_from_proto(
    spec: Option<proto::AssociationSpec>,
) -> Result<AssociationSpec, Error> {
    let spec = spec.ok_or_else(|| Error::invalid("to", "is required"))?;
    let to = spec.to.ok_or_else(|| Error::invalid("to", "is required"))?;
    let to = ObjectRef::parse(to.object_type, to.object_id).map_err(|error| error.within("to"))?;
    let association_type_id = match spec.association_type_id {
        0 => None,
        id if id > 0 => Some(id),
        id => {
            return Err(Error::invalid(
                "association_type_id",
                format!("{id} is not an association type id"),
            ));
        }
    };
    Ok(AssociationSpec {
        to,
        association_type_id,
    })
}

/// The wire form of a link.
pub(crate) fn association_to_proto(association: Association) -> proto::Association {
    proto::Association {
        ticket_id: association.ticket_id,
        to: Some(proto::ObjectRef {
            object_type: association.to.object_type,
            object_id: association.to.object_id,
        }),
        association_type_id: association.association_type_id,
        label: association.label,
        create_time: Some(timestamp(association.create_time)),
    }
}

fn type_to_proto(kind: AssociationType) -> proto::AssociationType {
    let category = match kind.category {
        Category::System => proto::AssociationCategory::System,
        Category::User => proto::AssociationCategory::User,
    };
    proto::AssociationType {
        id: kind.id,
        category: category.into(),
        from_object_type: kind.from_object_type,
        to_object_type: kind.to_object_type,
        label: kind.label,
        inverse_label: kind.inverse_label,
    }
}
