//! Integration tests of the ticketd gRPC API: every test starts a real server on 127.0.0.1:0 and runs once
//! against SQLite and once against PostgreSQL (`TICKETD_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Filter by database with `cargo test --test api sqlite`.
//!
//! `support/` is the harness every file uses (its `mod.rs` says what is where); each other file tests one
//! service or concern, and `customers/` holds the customer-portal tests around the world they share
//! (`customers/world.rs`). Real-world data the tests load lives in `tests/fixtures/`.

#[macro_use]
mod support;

mod agents;
mod associations;
mod auth;
mod automation;
mod batches;
mod cards;
mod config_cache;
mod cors;
mod customers;
mod escalation;
mod external_ids;
mod faults;
mod heartbeats;
mod history;
mod import;
mod operations;
mod outbox_order;
mod pipelines;
mod properties;
mod rules;
mod search;
mod server;
mod shared_commits;
mod side_effects;
mod startup;
mod streams;
mod tickets;
mod webhooks;
