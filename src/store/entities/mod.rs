//! sea-orm entities: one per table, mirroring the migrations.

pub mod idempotency_key;
pub mod pipeline;
pub mod stage;
pub mod ticket;
