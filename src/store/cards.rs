//! Card templates and cards; cards bound to a ticket follow it in the transaction that changes it.

use std::collections::{BTreeMap, HashMap, hash_map::Entry};

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    Store, WriteTxn,
    entities::{card, card_render, card_template},
    from_json,
    outbox::{PositionedRender, render_to_domain},
    tickets, to_json,
};
use crate::domain::{
    Error, Origin,
    card::{ANY_VERSION, Card, CardRender, CardTemplate, MAX_CARDS_PER_TICKET},
    card::{CardView, TicketContext, parse_stored_view, parse_ticket_path},
    now,
    page::{Cursor, Page},
    ticket::Ticket,
};

const TEMPLATE: &str = "card_template";
const CARD: &str = "card";

/// A template to register, already validated.
#[derive(Debug, Clone)]
pub struct NewCardTemplate {
    pub name: String,
    pub schema: String,
    pub app_model: String,
    pub bindings: BTreeMap<String, String>,
}

/// A card to send.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub template_id: i64,
    pub ticket_id: i64,
    pub group_id: String,
    pub subscribers: Vec<String>,
    pub send_to_all_subscribers: bool,
    pub properties: BTreeMap<String, String>,
}

/// Property changes to a card, based on `version` (or [`ANY_VERSION`]).
#[derive(Debug, Clone)]
pub struct CardChanges {
    pub version: i64,
    pub properties: BTreeMap<String, String>,
}

impl Store {
    /// Registers a template whose view and bindings were checked by the caller.
    pub async fn create_card_template(
        &self,
        template: NewCardTemplate,
        origin: &Origin,
    ) -> Result<CardTemplate, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = card_template::Entity::insert(card_template::ActiveModel {
                id: NotSet,
                name: Set(template.name.clone()),
                schema: Set(template.schema.clone()),
                app_model: Set(template.app_model.clone()),
                bindings: Set(to_json(&template.bindings)?),
                create_time: Set(now()),
            })
            .exec_with_returning(&**txn)
            .await?;
            template_to_domain(row)
        })
        .await
    }

    /// Reads a template.
    pub async fn get_card_template(&self, id: i64) -> Result<CardTemplate, Error> {
        template_to_domain(find_template(&self.db, id).await?)
    }

    /// One page of templates by id.
    pub async fn list_card_templates(
        &self,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<CardTemplate>, Error> {
        let mut select = card_template::Entity::find();
        if let Some(cursor) = after {
            select = select.filter(card_template::Column::Id.gt(cursor.id));
        }
        let templates = select
            .order_by_asc(card_template::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(template_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(templates, page_size, |template| {
            Cursor {
                key: template.id,
                id: template.id,
            }
        }))
    }

    /// Sends a card: its bound properties come from the ticket, the rest from the caller.
    pub async fn send_card(&self, new: NewCard, origin: &Origin) -> Result<Card, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let template = template_to_domain(find_template(&**txn, new.template_id).await?)?;
            // Locked, so that concurrent sends count each other's cards.
            let ticket = tickets::lock_ticket(txn, new.ticket_id).await?;
            let cards = card::Entity::find()
                .filter(card::Column::TicketId.eq(ticket.id))
                .count(&**txn)
                .await?;
            if cards >= MAX_CARDS_PER_TICKET {
                return Err(Error::precondition(
                    "TOO_MANY_CARDS",
                    format!(
                        "ticket {} has {cards} cards; a ticket may have at most {MAX_CARDS_PER_TICKET}",
                        ticket.id
                    ),
                ));
            }
            let view = stored_view(&template)?;
            let bound = Bound::load(txn, &template, &ticket).await?;
            let mut properties = new.properties.clone();
            properties.extend(bound.values());
            let now = now();
            let row = card::Entity::insert(card::ActiveModel {
                id: NotSet,
                template_id: Set(template.id),
                ticket_id: Set(ticket.id),
                group_id: Set(new.group_id.clone()),
                subscribers: Set(to_json(&new.subscribers)?),
                send_to_all_subscribers: Set(new.send_to_all_subscribers),
                properties: Set(to_json(&properties)?),
                version: Set(1),
                create_time: Set(now),
                update_time: Set(now),
            })
            .exec_with_returning(&**txn)
            .await?;
            let card = card_to_domain(row)?;
            txn.push_render(bound.render(&view, &card));
            Ok(card)
        })
        .await
    }

    /// Changes card properties if `changes.version` is current or [`ANY_VERSION`].
    pub async fn update_card_properties(
        &self,
        card_id: i64,
        changes: CardChanges,
        origin: &Origin,
    ) -> Result<Card, Error> {
        self.write(origin.request.as_ref(), async |txn| {
            let row = card::Entity::find_by_id(card_id)
                .lock_exclusive()
                .one(&**txn)
                .await?
                .ok_or_else(|| Error::not_found(CARD, card_id))?;
            let mut card = card_to_domain(row)?;
            if changes.version != ANY_VERSION && changes.version != card.version {
                return Err(Error::VersionMismatch {
                    resource: CARD,
                    id: card_id.to_string(),
                    sent: changes.version,
                    current: card.version,
                });
            }
            card.properties.extend(changes.properties.clone());
            let template = template_to_domain(find_template(&**txn, card.template_id).await?)?;
            let ticket = tickets::load_many(&**txn, &[card.ticket_id])
                .await?
                .pop()
                .ok_or_else(|| Error::not_found(Ticket::RESOURCE, card.ticket_id))?;
            let view = stored_view(&template)?;
            let bound = Bound::load(txn, &template, &ticket).await?;
            save_new_version(txn, &mut card).await?;
            txn.push_render(bound.render(&view, &card));
            Ok(card)
        })
        .await
    }

    /// Reads a card.
    pub async fn get_card(&self, card_id: i64) -> Result<Card, Error> {
        let row = card::Entity::find_by_id(card_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found(CARD, card_id))?;
        card_to_domain(row)
    }

    /// A ticket's cards, oldest first.
    pub async fn list_cards(
        &self,
        ticket_id: i64,
        page_size: u64,
        after: Option<Cursor>,
    ) -> Result<Page<Card>, Error> {
        self.require_ticket(ticket_id).await?;
        let mut select = card::Entity::find().filter(card::Column::TicketId.eq(ticket_id));
        if let Some(cursor) = after {
            select = select.filter(card::Column::Id.gt(cursor.id));
        }
        let cards = select
            .order_by_asc(card::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(card_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(cards, page_size, |card| Cursor {
            key: card.id,
            id: card.id,
        }))
    }

    /// The newest render of a card.
    pub async fn render_card(&self, card_id: i64) -> Result<CardRender, Error> {
        card_render::Entity::find()
            .filter(card_render::Column::CardId.eq(card_id))
            .order_by_desc(card_render::Column::Version)
            .one(&self.db)
            .await?
            .map(|row| render_to_domain(row).map(|positioned| positioned.render))
            .transpose()?
            .ok_or_else(|| Error::not_found(CARD, card_id))
    }

    /// The newest render of each card of a group (or of one card), oldest card first.
    pub async fn latest_renders(
        &self,
        card_id: Option<i64>,
        group_id: Option<&str>,
    ) -> Result<Vec<PositionedRender>, Error> {
        let mut select = card::Entity::find();
        if let Some(card_id) = card_id {
            select = select.filter(card::Column::Id.eq(card_id));
        }
        if let Some(group_id) = group_id {
            select = select.filter(card::Column::GroupId.eq(group_id));
        }
        let cards = select.order_by_asc(card::Column::Id).all(&self.db).await?;
        if card_id.is_some() && cards.is_empty() {
            return Err(Error::not_found(CARD, card_id.unwrap_or_default()));
        }
        let mut latest = Vec::with_capacity(cards.len());
        for card in cards {
            if let Some(row) = card_render::Entity::find()
                .filter(card_render::Column::CardId.eq(card.id))
                .filter(card_render::Column::Version.eq(card.version))
                .one(&self.db)
                .await?
            {
                latest.push(render_to_domain(row)?);
            }
        }
        Ok(latest)
    }
}

/// For each changed ticket, moves every card bound to it to the ticket's new values; returns the renders of
/// the cards that changed. Runs inside the transaction that changed the tickets, so its work is bounded: at most
/// MAX_CARDS_PER_TICKET cards per ticket, each template parsed once, each (template, ticket) resolved once, and
/// each render bounded by the template limits (see `domain::card::view`).
pub(super) async fn follow_tickets(
    txn: &WriteTxn,
    tickets: &[&Ticket],
) -> Result<Vec<CardRender>, Error> {
    if tickets.is_empty() {
        return Ok(Vec::new());
    }
    let by_id: HashMap<i64, &Ticket> = tickets.iter().map(|ticket| (ticket.id, *ticket)).collect();
    let cards = card::Entity::find()
        .filter(card::Column::TicketId.is_in(by_id.keys().copied()))
        .order_by_asc(card::Column::Id)
        .lock_exclusive()
        .all(&**txn)
        .await?;
    // `None`: the template binds nothing, or was stored before today's limits and is left alone.
    let mut templates: HashMap<i64, Option<(CardTemplate, CardView)>> = HashMap::new();
    let mut bounds: HashMap<(i64, i64), Bound> = HashMap::new();
    let mut renders = Vec::new();
    for row in cards {
        let mut card = card_to_domain(row)?;
        let Some(ticket) = by_id.get(&card.ticket_id) else {
            continue;
        };
        let template = match templates.entry(card.template_id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let template = template_to_domain(find_template(&**txn, card.template_id).await?)?;
                entry.insert(followed(template))
            }
        };
        let Some((template, view)) = template else {
            continue;
        };
        let bound = match bounds.entry((template.id, ticket.id)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Bound::load(txn, template, ticket).await?),
        };
        let before = card.properties.clone();
        card.properties.extend(bound.values());
        if card.properties == before {
            continue;
        }
        save_new_version(txn, &mut card).await?;
        renders.push(bound.render(view, &card));
    }
    Ok(renders)
}

/// A template whose cards follow their ticket, with its view; `None` when it binds nothing or no longer passes
/// the view rules (registered before the limits): a ticket change never fails, nor grows unbounded, for a card.
fn followed(template: CardTemplate) -> Option<(CardTemplate, CardView)> {
    if template.bindings.is_empty() {
        return None;
    }
    match stored_view(&template) {
        Ok(view) => Some((template, view)),
        Err(error) => {
            tracing::warn!(template_id = template.id, %error, "card template left out of ticket changes");
            None
        }
    }
}

/// A stored template's view. Templates are validated when registered; one that fails now predates a limit.
fn stored_view(template: &CardTemplate) -> Result<CardView, Error> {
    parse_stored_view(&template.schema).map_err(|error| {
        Error::precondition(
            "CARD_TEMPLATE_OUT_OF_BOUNDS",
            format!(
                "card template {} no longer passes the view rules ({error}); register it again",
                template.id
            ),
        )
    })
}

/// The values a template's bindings take from one ticket, and what renders need of the ticket.
struct Bound {
    values: BTreeMap<String, String>,
    ticket: Ticket,
    pipeline_label: String,
    stage_label: String,
    stage_state: crate::domain::pipeline::TicketState,
}

impl Bound {
    async fn load(txn: &WriteTxn, template: &CardTemplate, ticket: &Ticket) -> Result<Self, Error> {
        let config = txn.config().await?;
        let pipeline = config
            .pipelines
            .get(&ticket.pipeline_id)
            .ok_or_else(|| Error::internal(format!("pipeline {} vanished", ticket.pipeline_id)))?;
        let stage = pipeline
            .stages
            .iter()
            .find(|stage| stage.id == ticket.stage_id)
            .ok_or_else(|| Error::internal(format!("stage {} vanished", ticket.stage_id)))?;
        let mut bound = Self {
            values: BTreeMap::new(),
            ticket: ticket.clone(),
            pipeline_label: pipeline.label.clone(),
            stage_label: stage.label.clone(),
            stage_state: stage.state,
        };
        let context = bound.context();
        let mut values = BTreeMap::new();
        for (property, path) in &template.bindings {
            let path = parse_ticket_path(property, path).map_err(Error::internal)?;
            values.insert(property.clone(), path.resolve(&context));
        }
        bound.values = values;
        Ok(bound)
    }

    fn context(&self) -> TicketContext<'_> {
        TicketContext {
            ticket: &self.ticket,
            pipeline_label: &self.pipeline_label,
            stage_label: &self.stage_label,
            stage_state: self.stage_state,
        }
    }

    fn values(&self) -> BTreeMap<String, String> {
        self.values.clone()
    }

    fn render(&self, view: &CardView, card: &Card) -> CardRender {
        let rendered = view.render(&card.properties, Some(&self.context()));
        CardRender {
            card_id: card.id,
            version: card.version,
            ticket_id: card.ticket_id,
            group_id: card.group_id.clone(),
            view: rendered.view.to_string(),
            texts: rendered.texts,
        }
    }
}

async fn save_new_version(txn: &WriteTxn, card: &mut Card) -> Result<(), Error> {
    card.version += 1;
    card.update_time = now();
    card::Entity::update(card::ActiveModel {
        id: Set(card.id),
        properties: Set(to_json(&card.properties)?),
        version: Set(card.version),
        update_time: Set(card.update_time),
        ..Default::default()
    })
    .exec(&**txn)
    .await?;
    Ok(())
}

async fn find_template(db: &impl ConnectionTrait, id: i64) -> Result<card_template::Model, Error> {
    card_template::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found(TEMPLATE, id))
}

fn template_to_domain(row: card_template::Model) -> Result<CardTemplate, Error> {
    Ok(CardTemplate {
        id: row.id,
        name: row.name,
        schema: row.schema,
        app_model: row.app_model,
        bindings: from_json(row.bindings)?,
        create_time: row.create_time,
    })
}

fn card_to_domain(row: card::Model) -> Result<Card, Error> {
    Ok(Card {
        id: row.id,
        template_id: row.template_id,
        ticket_id: row.ticket_id,
        group_id: row.group_id,
        subscribers: from_json(row.subscribers)?,
        send_to_all_subscribers: row.send_to_all_subscribers,
        properties: from_json(row.properties)?,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}
