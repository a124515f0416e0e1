//! `ticketd.v1.PropertyService`.

use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, decode_page_token, encode_page_token, idempotent_requests, origin,
    query_fingerprint, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        page::page_size,
        property::{PropertyDefinition, PropertyOption, PropertyType},
    },
    proto::{self, property_service_server::PropertyService},
    store::{PropertyChanges, Store},
};

idempotent_requests! {
    proto::CreatePropertyRequest => "ticketd.v1.PropertyService/CreateProperty",
    proto::UpdatePropertyRequest => "ticketd.v1.PropertyService/UpdateProperty",
    proto::ArchivePropertyRequest => "ticketd.v1.PropertyService/ArchiveProperty",
}

const UPDATABLE_PATHS: &[&str] = &[
    "label",
    "description",
    "group_name",
    "type",
    "options",
    "required",
    "default_value",
    "agent_only",
    "customer_visible",
    "customer_editable",
];
const OUTPUT_ONLY_PATHS: &[&str] = &[
    "name",
    "archived",
    "etag",
    "create_time",
    "update_time",
    "archive_time",
];

/// Serves property definitions from the store.
pub struct PropertyApi {
    store: Store,
}

impl PropertyApi {
    /// A service over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl PropertyService for PropertyApi {
    async fn create_property(
        &self,
        request: Request<proto::CreatePropertyRequest>,
    ) -> Result<Response<proto::PropertyDefinition>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let property = request
            .into_inner()
            .property
            .ok_or_else(|| Error::invalid("property", "is required"))?;
        let created = async {
            let definition = definition_from_proto(property)?;
            self.store.create_property(definition, &origin).await
        }
        .await
        .map_err(|error| error.within("property"))?;
        Ok(Response::new(definition_to_proto(created)))
    }

    async fn get_property(
        &self,
        request: Request<proto::GetPropertyRequest>,
    ) -> Result<Response<proto::PropertyDefinition>, Status> {
        let name = request.into_inner().name;
        Ok(Response::new(definition_to_proto(
            self.store.get_property(&name).await?,
        )))
    }

    async fn list_properties(
        &self,
        request: Request<proto::ListPropertiesRequest>,
    ) -> Result<Response<proto::ListPropertiesResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!(
            "properties order=name archived={}",
            request.show_archived
        ));
        let after: Option<String> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_properties(page_size, after, request.show_archived)
            .await?;
        Ok(Response::new(proto::ListPropertiesResponse {
            properties: page.items.into_iter().map(definition_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_property(
        &self,
        request: Request<proto::UpdatePropertyRequest>,
    ) -> Result<Response<proto::PropertyDefinition>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let property = request
            .property
            .ok_or_else(|| Error::invalid("property", "is required"))?;
        let changes = changes_from_proto(&property, request.update_mask)?;
        let updated = self
            .store
            .update_property(&property.name, &property.etag, changes, &origin)
            .await
            .map_err(|error| error.within("property"))?;
        Ok(Response::new(definition_to_proto(updated)))
    }

    async fn archive_property(
        &self,
        request: Request<proto::ArchivePropertyRequest>,
    ) -> Result<Response<proto::PropertyDefinition>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let archived = self
            .store
            .archive_property(&request.name, &request.etag, &origin)
            .await?;
        Ok(Response::new(definition_to_proto(archived)))
    }
}

fn parse_type(raw: i32) -> Result<PropertyType, Error> {
    match proto::PropertyType::try_from(raw) {
        Ok(proto::PropertyType::String) => Ok(PropertyType::String),
        Ok(proto::PropertyType::Number) => Ok(PropertyType::Number),
        Ok(proto::PropertyType::Bool) => Ok(PropertyType::Bool),
        Ok(proto::PropertyType::Date) => Ok(PropertyType::Date),
        Ok(proto::PropertyType::Datetime) => Ok(PropertyType::DateTime),
        Ok(proto::PropertyType::Enumeration) => Ok(PropertyType::Enumeration),
        Ok(proto::PropertyType::Unspecified) => Err(Error::invalid("type", "is required")),
        Err(_) => Err(Error::invalid(
            "type",
            format!("{raw} is not a PropertyType value"),
        )),
    }
}

fn type_to_proto(property_type: PropertyType) -> proto::PropertyType {
    match property_type {
        PropertyType::String => proto::PropertyType::String,
        PropertyType::Number => proto::PropertyType::Number,
        PropertyType::Bool => proto::PropertyType::Bool,
        PropertyType::Date => proto::PropertyType::Date,
        PropertyType::DateTime => proto::PropertyType::Datetime,
        PropertyType::Enumeration => proto::PropertyType::Enumeration,
    }
}

fn options_from_proto(options: &[proto::PropertyOption]) -> Vec<PropertyOption> {
    options
        .iter()
        .map(|option| PropertyOption {
            label: option.label.clone(),
            value: option.value.clone(),
            display_order: option.display_order,
            hidden: option.hidden,
        })
        .collect()
}

/// An empty default means none.
fn default_from_proto(raw: &str) -> Option<String> {
    (!raw.is_empty()).then(|| raw.to_owned())
}

fn definition_from_proto(property: proto::PropertyDefinition) -> Result<PropertyDefinition, Error> {
    let now = crate::domain::now();
    Ok(PropertyDefinition {
        property_type: parse_type(property.r#type)?,
        options: options_from_proto(&property.options),
        default_value: default_from_proto(&property.default_value),
        name: property.name,
        label: property.label,
        description: property.description,
        group_name: property.group_name,
        required: property.required,
        agent_only: property.agent_only,
        customer_visible: property.customer_visible,
        customer_editable: property.customer_editable,
        version: 1,
        create_time: now,
        update_time: now,
        archive_time: None,
    })
}

/// Turns an update request into changes; errors name `update_mask` or the `property.` field at fault.
fn changes_from_proto(
    property: &proto::PropertyDefinition,
    mask: Option<prost_types::FieldMask>,
) -> Result<PropertyChanges, Error> {
    let paths = update_paths(mask, || {
        let mut paths = Vec::new();
        let mut add = |is_set: bool, path: &'static str| {
            if is_set {
                paths.push(path);
            }
        };
        add(!property.label.is_empty(), "label");
        add(!property.description.is_empty(), "description");
        add(!property.group_name.is_empty(), "group_name");
        add(property.r#type != 0, "type");
        add(!property.options.is_empty(), "options");
        add(property.required, "required");
        add(!property.default_value.is_empty(), "default_value");
        add(property.agent_only, "agent_only");
        add(property.customer_visible, "customer_visible");
        add(property.customer_editable, "customer_editable");
        paths
    });
    let mut changes = PropertyChanges::default();
    for path in paths {
        match path.as_str() {
            "label" => changes.label = Some(property.label.clone()),
            "description" => changes.description = Some(property.description.clone()),
            "group_name" => changes.group_name = Some(property.group_name.clone()),
            "type" => {
                changes.property_type =
                    Some(parse_type(property.r#type).map_err(|error| error.within("property"))?)
            }
            "options" => changes.options = Some(options_from_proto(&property.options)),
            "required" => changes.required = Some(property.required),
            "default_value" => {
                changes.default_value = Some(default_from_proto(&property.default_value))
            }
            "agent_only" => changes.agent_only = Some(property.agent_only),
            "customer_visible" => changes.customer_visible = Some(property.customer_visible),
            "customer_editable" => changes.customer_editable = Some(property.customer_editable),
            other => return Err(bad_mask_path(other, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS)),
        }
    }
    Ok(changes)
}

fn definition_to_proto(definition: PropertyDefinition) -> proto::PropertyDefinition {
    proto::PropertyDefinition {
        etag: definition.etag(),
        archived: definition.archived(),
        r#type: type_to_proto(definition.property_type).into(),
        options: definition
            .options
            .into_iter()
            .map(|option| proto::PropertyOption {
                label: option.label,
                value: option.value,
                display_order: option.display_order,
                hidden: option.hidden,
            })
            .collect(),
        default_value: definition.default_value.unwrap_or_default(),
        name: definition.name,
        label: definition.label,
        description: definition.description,
        group_name: definition.group_name,
        required: definition.required,
        agent_only: definition.agent_only,
        customer_visible: definition.customer_visible,
        customer_editable: definition.customer_editable,
        create_time: Some(timestamp(definition.create_time)),
        update_time: Some(timestamp(definition.update_time)),
        archive_time: definition.archive_time.map(timestamp),
    }
}
