//! `ticketd.v1.CardService`.

use std::{collections::HashMap, pin::Pin, sync::Arc};

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{
    caller::viewer, decode_page_token, encode_page_token, heartbeat::Heartbeats,
    idempotent_requests, origin, query_fingerprint, stream_visibility, timestamp, watch_end_status,
};
use crate::{
    domain::{
        Error,
        access::Viewer,
        card::{
            Card, CardRender, CardTemplate, MAX_TEMPLATE_BINDINGS, check_card_properties,
            check_json_size, parse_name, parse_subscribers,
        },
        card::{parse_ticket_path, parse_view},
        page::{Cursor, page_size},
        text,
    },
    events::{EventHub, WatchItem},
    proto::{self, card_service_server::CardService},
    store::{CardChanges, NewCard, NewCardTemplate, Store},
};

idempotent_requests! {
    proto::CreateCardTemplateRequest => "ticketd.v1.CardService/CreateCardTemplate",
    proto::SendCardRequest => "ticketd.v1.CardService/SendCard",
    proto::UpdateCardPropertiesRequest => "ticketd.v1.CardService/UpdateCardProperties",
}

/// Serves card templates and cards; renders are streamed by the event hub.
pub struct CardApi {
    store: Store,
    hub: Arc<EventHub>,
}

impl CardApi {
    /// A service over `store`, streaming through `hub`.
    pub fn new(store: Store, hub: Arc<EventHub>) -> Self {
        Self { store, hub }
    }
}

type RenderStream = Pin<Box<dyn Stream<Item = Result<proto::RenderedCard, Status>> + Send>>;

#[tonic::async_trait]
impl CardService for CardApi {
    async fn create_card_template(
        &self,
        request: Request<proto::CreateCardTemplateRequest>,
    ) -> Result<Response<proto::CardTemplate>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        let name = parse_name("name", &request.name)?;
        // Parsing checks the whole view now, so sending and rendering can rely on it later.
        parse_view(&request.schema)?;
        check_json_size("app_model", &request.app_model)?;
        if !request.app_model.trim().is_empty() {
            let app_model = serde_json::from_str::<serde_json::Value>(&request.app_model)
                .map_err(|_| Error::invalid("app_model", "is not JSON"))?;
            text::check_json("app_model", "app_model", &app_model)?;
        }
        if request.bindings.len() > MAX_TEMPLATE_BINDINGS {
            return Err(Error::invalid(
                "bindings",
                format!(
                    "at most {MAX_TEMPLATE_BINDINGS} bindings, got {}",
                    request.bindings.len()
                ),
            )
            .into());
        }
        for (property, path) in &request.bindings {
            let field = format!("bindings.{property}");
            parse_name(&field, property)?;
            parse_ticket_path(&field, path)?;
        }
        let template = self
            .store
            .create_card_template(
                NewCardTemplate {
                    name,
                    schema: request.schema,
                    app_model: request.app_model,
                    bindings: request.bindings,
                },
                &origin,
            )
            .await?;
        Ok(Response::new(template_to_proto(template)))
    }

    async fn get_card_template(
        &self,
        request: Request<proto::GetCardTemplateRequest>,
    ) -> Result<Response<proto::CardTemplate>, Status> {
        let template = self.store.get_card_template(request.get_ref().id).await?;
        Ok(Response::new(template_to_proto(template)))
    }

    async fn list_card_templates(
        &self,
        request: Request<proto::ListCardTemplatesRequest>,
    ) -> Result<Response<proto::ListCardTemplatesResponse>, Status> {
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint("card_templates order=id");
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        let page = self.store.list_card_templates(page_size, after).await?;
        Ok(Response::new(proto::ListCardTemplatesResponse {
            card_templates: page.items.into_iter().map(template_to_proto).collect(),
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn send_card(
        &self,
        request: Request<proto::SendCardRequest>,
    ) -> Result<Response<proto::Card>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        check_card_properties("properties", &request.properties)?;
        let new = NewCard {
            template_id: request.template_id,
            ticket_id: request.ticket_id,
            group_id: parse_name("group_id", &request.group_id)?,
            subscribers: parse_subscribers(request.subscribers)?,
            send_to_all_subscribers: request.send_to_all_subscribers,
            properties: request.properties,
        };
        let card = self.store.send_card(new, &origin).await?;
        Ok(Response::new(card_to_proto(card)))
    }

    async fn update_card_properties(
        &self,
        request: Request<proto::UpdateCardPropertiesRequest>,
    ) -> Result<Response<proto::Card>, Status> {
        let origin = origin(request.extensions(), request.get_ref())?;
        let request = request.into_inner();
        if request.version < -1 || request.version == 0 {
            return Err(Error::invalid(
                "version",
                "must be the card's version (1 or more) or -1 for last write wins",
            )
            .into());
        }
        check_card_properties("update_properties", &request.update_properties)?;
        let card = self
            .store
            .update_card_properties(
                request.card_id,
                CardChanges {
                    version: request.version,
                    properties: request.update_properties,
                },
                &origin,
            )
            .await?;
        Ok(Response::new(card_to_proto(card)))
    }

    async fn get_card(
        &self,
        request: Request<proto::GetCardRequest>,
    ) -> Result<Response<proto::Card>, Status> {
        let viewer = viewer(request.extensions())?;
        let card = self.store.get_card(request.get_ref().card_id).await?;
        self.check_customer_card(&viewer, &card).await?;
        Ok(Response::new(card_to_proto(card)))
    }

    async fn list_cards(
        &self,
        request: Request<proto::ListCardsRequest>,
    ) -> Result<Response<proto::ListCardsResponse>, Status> {
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        let query = query_fingerprint(&format!("cards ticket={}", request.ticket_id));
        let after: Option<Cursor> = decode_page_token(&query, &request.page_token)?;
        self.store
            .require_visible_ticket(viewer.scope(), request.ticket_id)
            .await?;
        let page = self
            .store
            .list_cards(request.ticket_id, page_size, after)
            .await?;
        let mut cards = Vec::with_capacity(page.items.len());
        // The ticket's visibility was checked above; each template is read once however many cards share it.
        let mut binds_visible: HashMap<i64, bool> = HashMap::new();
        for card in page.items {
            if let Some(view) = viewer.customer() {
                let visible = match binds_visible.get(&card.template_id) {
                    Some(visible) => *visible,
                    None => {
                        let template = self.store.get_card_template(card.template_id).await?;
                        let visible = view.hidden_card_field(&template)?.is_none();
                        binds_visible.insert(card.template_id, visible);
                        visible
                    }
                };
                // Cards showing fields the customer may not see are left out of its listing.
                if !visible {
                    continue;
                }
            }
            cards.push(card_to_proto(card));
        }
        Ok(Response::new(proto::ListCardsResponse {
            cards,
            next_page_token: encode_page_token(&query, page.next),
        }))
    }

    async fn render_card(
        &self,
        request: Request<proto::RenderCardRequest>,
    ) -> Result<Response<proto::RenderedCard>, Status> {
        let viewer = viewer(request.extensions())?;
        let card_id = request.get_ref().card_id;
        if viewer.customer().is_some() {
            let card = self.store.get_card(card_id).await?;
            self.check_customer_card(&viewer, &card).await?;
        }
        let render = self.store.render_card(card_id).await?;
        Ok(Response::new(render_to_proto(render)))
    }

    type WatchCardStream = RenderStream;

    async fn watch_card(
        &self,
        request: Request<proto::WatchCardRequest>,
    ) -> Result<Response<Self::WatchCardStream>, Status> {
        let viewer = viewer(request.extensions())?;
        let request = request.into_inner();
        if !request.group_id.is_empty() {
            viewer.check_card_group_watch()?;
        }
        let (card_id, group_id) = match (request.card_id, request.group_id.is_empty()) {
            (0, true) => {
                return Err(Error::invalid("card_id", "name a card_id or a group_id").into());
            }
            (0, false) => (None, Some(parse_name("group_id", &request.group_id)?)),
            (card_id, true) => {
                // Fails fast with NOT_FOUND rather than an empty stream.
                let card = self.store.get_card(card_id).await?;
                self.check_customer_card(&viewer, &card).await?;
                (Some(card_id), None)
            }
            (_, false) => {
                return Err(
                    Error::invalid("group_id", "name a card_id or a group_id, not both").into(),
                );
            }
        };
        let watch = self
            .hub
            .watch_cards(card_id, group_id, request.after_version.max(0));
        // A customer keeps receiving a card only while its portal still shows the card's ticket (an agent may
        // unfollow it for the customer mid-stream).
        let scope = viewer.scope().cloned().map(Arc::new);
        let store = self.store.clone();
        let stream = ReceiverStream::new(watch)
            .then(move |item| {
                let (store, scope) = (store.clone(), scope.clone());
                async move {
                    match item {
                        WatchItem::Item(item) => {
                            let render = &item.1;
                            if let Some(scope) = scope {
                                let shown = stream_visibility(
                                    &store,
                                    &scope,
                                    render.ticket_id,
                                    None,
                                    render.version - 1,
                                )
                                .await;
                                match shown {
                                    Ok(true) => {}
                                    Ok(false) => return None,
                                    Err(status) => return Some(Err(status)),
                                }
                            }
                            Some(Ok(render_to_proto(render.clone())))
                        }
                        WatchItem::End {
                            resume_after,
                            reason,
                        } => Some(Err(watch_end_status(resume_after, reason))),
                    }
                }
            })
            .filter_map(|item| item);
        let heartbeat = || proto::RenderedCard {
            heartbeat: true,
            ..Default::default()
        };
        Ok(Response::new(Box::pin(Heartbeats::new(
            Box::pin(stream),
            self.hub.heartbeat(),
            heartbeat,
        ))))
    }
}

impl CardApi {
    /// A customer reads a card only when its portal shows the card's ticket (else NOT_FOUND, as if the card
    /// did not exist) and every ticket field the card binds (else PERMISSION_DENIED: the rendered card
    /// would show a hidden value).
    async fn check_customer_card(&self, viewer: &Viewer, card: &Card) -> Result<(), Error> {
        let Some(view) = viewer.customer() else {
            return Ok(());
        };
        self.store
            .require_visible_ticket(viewer.scope(), card.ticket_id)
            .await
            .map_err(|error| match error {
                Error::NotFound { .. } => Error::not_found("card", card.id),
                other => other,
            })?;
        let template = self.store.get_card_template(card.template_id).await?;
        match view.hidden_card_field(&template)? {
            None => Ok(()),
            Some(path) => Err(Error::denied(
                "card_id",
                format!("card {} shows {path}, which this portal hides", card.id),
            )),
        }
    }
}

fn template_to_proto(template: CardTemplate) -> proto::CardTemplate {
    proto::CardTemplate {
        id: template.id,
        name: template.name,
        schema: template.schema,
        app_model: template.app_model,
        bindings: template.bindings,
        create_time: Some(timestamp(template.create_time)),
    }
}

fn card_to_proto(card: Card) -> proto::Card {
    proto::Card {
        id: card.id,
        template_id: card.template_id,
        ticket_id: card.ticket_id,
        group_id: card.group_id,
        subscribers: card.subscribers,
        send_to_all_subscribers: card.send_to_all_subscribers,
        properties: card.properties,
        version: card.version,
        create_time: Some(timestamp(card.create_time)),
        update_time: Some(timestamp(card.update_time)),
    }
}

fn render_to_proto(render: CardRender) -> proto::RenderedCard {
    proto::RenderedCard {
        card_id: render.card_id,
        version: render.version,
        view: render.view,
        texts: render.texts,
        ticket_id: render.ticket_id,
        group_id: render.group_id,
        heartbeat: false,
    }
}
