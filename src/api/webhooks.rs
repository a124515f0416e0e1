//! `ticketd.v1.WebhookService`, and the body of a webhook delivery (the proto3 JSON of the event's messages).

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::{Request, Response, Status};

use super::{
    bad_mask_path, decode_page_token, encode_page_token, idempotent_requests, origin,
    query_fingerprint, timestamp, update_paths,
};
use crate::{
    domain::{
        Error,
        event::{EventDetail, TicketEvent},
        page::page_size,
        webhook::{
            Delivery, DeliveryFilter, DeliveryStatus, NewWebhook, PREVIOUS_SECRET_LIFETIME,
            Webhook, WebhookChanges,
        },
    },
    proto::{self, webhook_service_server::WebhookService},
    store::Store,
};

idempotent_requests! {
    proto::CreateWebhookRequest => "ticketd.v1.WebhookService/CreateWebhook",
    proto::UpdateWebhookRequest => "ticketd.v1.WebhookService/UpdateWebhook",
    proto::RotateWebhookSecretRequest => "ticketd.v1.WebhookService/RotateWebhookSecret",
}

const UPDATABLE_PATHS: &[&str] = &["url", "event_types", "condition", "description", "enabled"];
const OUTPUT_ONLY_PATHS: &[&str] = &[
    "id",
    "disabled_reason",
    "secret",
    "previous_secret_expire_time",
    "etag",
    "create_time",
    "update_time",
];

/// Serves webhook management from the store; the workers in `delivery` send what it enqueues.
pub struct WebhookApi {
    store: Store,
    /// `--webhook-allow-private-targets`: whether URLs may name loopback and private addresses.
    allow_private_targets: bool,
}

impl WebhookApi {
    /// A service over `store`.
    pub fn new(store: Store, allow_private_targets: bool) -> Self {
        Self {
            store,
            allow_private_targets,
        }
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook(
        &self,
        request: Request<proto::CreateWebhookRequest>,
    ) -> Result<Response<proto::Webhook>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let webhook = request
            .into_inner()
            .webhook
            .ok_or_else(|| Error::invalid("webhook", "is required"))?;
        let new = NewWebhook {
            url: webhook.url,
            event_types: webhook.event_types,
            condition: webhook.condition,
            description: webhook.description,
        };
        let condition = new
            .check(self.allow_private_targets)
            .map_err(|error| error.within("webhook"))?;
        let created = self
            .store
            .create_webhook(new, &condition, &origin)
            .await
            .map_err(|error| error.within("webhook"))?;
        // The one answer, with RotateWebhookSecret's, that shows the secret in full.
        Ok(Response::new(webhook_to_proto(created)))
    }

    async fn get_webhook(
        &self,
        request: Request<proto::GetWebhookRequest>,
    ) -> Result<Response<proto::Webhook>, Status> {
        let id = required_id("id", request.get_ref().id)?;
        let webhook = self.store.get_webhook(id).await?;
        Ok(Response::new(webhook_to_proto(webhook.redacted())))
    }

    async fn list_webhooks(
        &self,
        request: Request<proto::ListWebhooksRequest>,
    ) -> Result<Response<proto::ListWebhooksResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint("webhooks order=id");
        let after: Option<i64> = decode_page_token(&query, &request.page_token)?;
        let page = self.store.list_webhooks(page_size, after).await?;
        Ok(Response::new(proto::ListWebhooksResponse {
            webhooks: page
                .items
                .into_iter()
                .map(|webhook| webhook_to_proto(webhook.redacted()))
                .collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn update_webhook(
        &self,
        request: Request<proto::UpdateWebhookRequest>,
    ) -> Result<Response<proto::Webhook>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let webhook = request
            .webhook
            .ok_or_else(|| Error::invalid("webhook", "is required"))?;
        let id = required_id("webhook.id", webhook.id)?;
        let etag = webhook.etag.clone();
        let changes = changes_from_proto(webhook, request.update_mask)?;
        let condition = changes
            .check(self.allow_private_targets)
            .map_err(|error| error.within("webhook"))?;
        let updated = self
            .store
            .update_webhook(id, &etag, changes, condition.as_ref(), &origin)
            .await
            .map_err(|error| error.within("webhook"))?;
        Ok(Response::new(webhook_to_proto(updated.redacted())))
    }

    async fn delete_webhook(
        &self,
        request: Request<proto::DeleteWebhookRequest>,
    ) -> Result<Response<proto::DeleteWebhookResponse>, Status> {
        let request = request.into_inner();
        let id = required_id("id", request.id)?;
        self.store.delete_webhook(id, &request.etag).await?;
        Ok(Response::new(proto::DeleteWebhookResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<proto::RotateWebhookSecretRequest>,
    ) -> Result<Response<proto::Webhook>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let id = required_id("id", request.get_ref().id)?;
        let rotated = self
            .store
            .rotate_webhook_secret(id, PREVIOUS_SECRET_LIFETIME, &origin)
            .await?;
        // The new secret in full, once; the previous one is the receiver's already.
        let shown = Webhook {
            previous_secret: None,
            ..rotated
        };
        Ok(Response::new(webhook_to_proto(shown)))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<proto::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<proto::ListWebhookDeliveriesResponse>, Status> {
        let request = request.into_inner();
        let webhook_id = required_id("webhook_id", request.webhook_id)?;
        let page_size = page_size(request.page_size)?;
        if request.ticket_id < 0 {
            return Err(Error::invalid("ticket_id", "must not be negative").into());
        }
        let filter = DeliveryFilter {
            ticket_id: (request.ticket_id != 0).then_some(request.ticket_id),
            status: status_filter(request.status)?,
        };
        let query = query_fingerprint(&format!(
            "webhook deliveries order=id desc webhook={webhook_id} ticket={:?} status={:?}",
            filter.ticket_id, filter.status
        ));
        let before: Option<i64> = decode_page_token(&query, &request.page_token)?;
        let page = self
            .store
            .list_webhook_deliveries(webhook_id, filter, page_size, before)
            .await?;
        Ok(Response::new(proto::ListWebhookDeliveriesResponse {
            deliveries: page.items.into_iter().map(delivery_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn redeliver_webhook(
        &self,
        request: Request<proto::RedeliverWebhookRequest>,
    ) -> Result<Response<proto::WebhookDelivery>, Status> {
        let id = required_id("delivery_id", request.get_ref().delivery_id)?;
        let delivery = self.store.redeliver_webhook(id).await?;
        Ok(Response::new(delivery_to_proto(delivery)))
    }
}

fn required_id(field: &str, id: i64) -> Result<i64, Error> {
    if id <= 0 {
        return Err(Error::invalid(field, "is required (a positive id)"));
    }
    Ok(id)
}

fn status_filter(raw: i32) -> Result<Option<DeliveryStatus>, Error> {
    match proto::DeliveryStatus::try_from(raw) {
        Ok(proto::DeliveryStatus::Unspecified) => Ok(None),
        Ok(proto::DeliveryStatus::Pending) => Ok(Some(DeliveryStatus::Pending)),
        Ok(proto::DeliveryStatus::Succeeded) => Ok(Some(DeliveryStatus::Succeeded)),
        Ok(proto::DeliveryStatus::Failed) => Ok(Some(DeliveryStatus::Failed)),
        Err(_) => Err(Error::invalid(
            "status",
            format!("{raw} is not a DeliveryStatus value"),
        )),
    }
}

/// With an empty mask, every field the request sets (AIP-134); `enabled: false` and clearing the condition
/// need a mask.
fn fields_set(webhook: &proto::Webhook) -> Vec<&'static str> {
    let mut paths = Vec::new();
    if !webhook.url.is_empty() {
        paths.push("url");
    }
    if !webhook.event_types.is_empty() {
        paths.push("event_types");
    }
    if !webhook.condition.is_empty() {
        paths.push("condition");
    }
    if !webhook.description.is_empty() {
        paths.push("description");
    }
    if webhook.enabled {
        paths.push("enabled");
    }
    paths
}

fn changes_from_proto(
    webhook: proto::Webhook,
    mask: Option<prost_types::FieldMask>,
) -> Result<WebhookChanges, Error> {
    let mut changes = WebhookChanges::default();
    for path in update_paths(mask, || fields_set(&webhook)) {
        match path.as_str() {
            "url" => changes.url = Some(webhook.url.clone()),
            "event_types" => changes.event_types = Some(webhook.event_types.clone()),
            "condition" => changes.condition = Some(webhook.condition.clone()),
            "description" => changes.description = Some(webhook.description.clone()),
            "enabled" => changes.enabled = Some(webhook.enabled),
            other => return Err(bad_mask_path(other, OUTPUT_ONLY_PATHS, UPDATABLE_PATHS)),
        }
    }
    Ok(changes)
}

fn webhook_to_proto(webhook: Webhook) -> proto::Webhook {
    proto::Webhook {
        id: webhook.id,
        url: webhook.url,
        event_types: webhook.event_types,
        condition: webhook.condition,
        description: webhook.description,
        enabled: webhook.enabled,
        disabled_reason: webhook.disabled_reason,
        secret: webhook.secret,
        previous_secret_expire_time: webhook.previous_secret_expire_time.map(timestamp),
        etag: webhook.etag,
        create_time: Some(timestamp(webhook.create_time)),
        update_time: Some(timestamp(webhook.update_time)),
    }
}

fn delivery_to_proto(delivery: Delivery) -> proto::WebhookDelivery {
    let status = match delivery.status {
        DeliveryStatus::Pending => proto::DeliveryStatus::Pending,
        DeliveryStatus::Succeeded => proto::DeliveryStatus::Succeeded,
        DeliveryStatus::Failed => proto::DeliveryStatus::Failed,
    };
    proto::WebhookDelivery {
        id: delivery.id,
        webhook_id: delivery.webhook_id,
        event_id: delivery.event_id,
        ticket_id: delivery.ticket_id,
        event_type: delivery.event_type,
        status: status.into(),
        next_attempt_time: (delivery.status == DeliveryStatus::Pending)
            .then(|| timestamp(delivery.next_attempt_time)),
        create_time: Some(timestamp(delivery.create_time)),
        attempts: delivery
            .attempts
            .into_iter()
            .map(|attempt| proto::DeliveryAttempt {
                attempt_time: Some(timestamp(attempt.attempt_time)),
                http_status: attempt.http_status,
                duration: prost_types::Duration::try_from(attempt.duration).ok(),
                response: attempt.response,
            })
            .collect(),
    }
}

/// The descriptors of ticketd's messages, for the proto3 JSON of delivery bodies.
fn descriptors() -> Result<&'static DescriptorPool, Error> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).ok())
        .as_ref()
        .ok_or_else(|| Error::internal("the built-in descriptor set does not decode"))
}

/// `message` in the proto3 JSON mapping (lowerCamelCase names, 64-bit integers as strings, defaults left out),
/// the form any protobuf library reads back.
fn proto_json<M: Message>(name: &str, message: &M) -> Result<serde_json::Value, Error> {
    let descriptor = descriptors()?
        .get_message_by_name(name)
        .ok_or_else(|| Error::internal(format!("no descriptor for {name}")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(Error::internal)?;
    serde_json::to_value(&dynamic).map_err(Error::internal)
}

/// The body of a delivery of `event` as `event_type`: `{"type", "timestamp", "data": {"ticket", "changes",
/// "actor", "cause"[, "comment"]}}`. Built from the event's stored snapshot alone, so every retry of a delivery
/// sends the same bytes.
pub(crate) fn delivery_body(event_type: &str, event: TicketEvent) -> Result<Vec<u8>, Error> {
    let time = event
        .create_time
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let actor = event.actor_id.clone();
    let cause = event.cause_event_id;
    let is_comment = matches!(event.detail, Some(EventDetail::Comment(_)));
    let wire = super::tickets::event_to_proto(event, true);
    let ticket = wire
        .ticket
        .as_ref()
        .map(|ticket| proto_json("ticketd.v1.Ticket", ticket))
        .transpose()?;
    let changes = wire
        .changes
        .iter()
        .map(|change| proto_json("ticketd.v1.FieldChange", change))
        .collect::<Result<Vec<_>, _>>()?;
    let mut data = serde_json::json!({
        "ticket": ticket,
        "changes": changes,
        "actor": actor,
        "cause": cause,
    });
    if is_comment && let Some(comment) = &wire.comment {
        data["comment"] = proto_json("ticketd.v1.Comment", comment)?;
    }
    let body = serde_json::json!({
        "type": event_type,
        "timestamp": time,
        "data": data,
    });
    serde_json::to_vec(&body).map_err(Error::internal)
}
