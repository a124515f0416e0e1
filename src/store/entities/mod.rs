//! sea-orm entities: one per table, mirroring the migrations.

pub mod agent;
pub mod association;
pub mod association_type;
pub mod card;
pub mod card_render;
pub mod card_template;
pub mod comment;
pub mod conversation_message;
pub mod conversation_ticket;
pub mod idempotency_key;
pub mod pipeline;
pub mod portal;
pub mod project_follower;
pub mod property_definition;
pub mod request_id;
pub mod rule;
pub mod stage;
pub mod ticket;
pub mod ticket_event;
pub mod ticket_follower;
pub mod ticket_property_value;
pub mod time_entry;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;
