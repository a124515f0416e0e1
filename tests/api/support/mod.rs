//! The test harness: a real `ticketd` server on `127.0.0.1:0` over a fresh database (SQLite or PostgreSQL),
//! connected generated clients, request builders and assertions on `tonic::Status`. Test files take it all with
//! `use crate::support::*;`.
//!
//! - [`databases`]: `both_databases!`, `postgres_only!` and the fresh SQLite and PostgreSQL databases behind them;
//! - [`app`]: [`TestApp`], the running server, its clients and happy-path shortcuts;
//! - [`credentials`]: the servers' JWT secret and callers' tokens;
//! - [`builders`]: requests and messages to send;
//! - [`extract`]: ids, times, event kinds, changes and stages read out of answers;
//! - [`listings`]: every page of a listing;
//! - [`assertions`]: checks on call results;
//! - [`streams`]: reading server streams with a timeout;
//! - [`fixtures`]: real-world data under `tests/fixtures/`;
//! - [`proxy`]: a TCP proxy between a server and PostgreSQL that a test cuts, holds and restores;
//! - [`receiver`]: a webhook receiver on `127.0.0.1:0` that records requests and answers per a plan.
// Each test file uses only part of the harness.
#![allow(dead_code)]

#[macro_use]
mod databases;
mod app;
mod assertions;
mod builders;
mod credentials;
mod extract;
mod fixtures;
mod listings;
mod proxy;
mod receiver;
mod streams;

pub use app::*;
pub use assertions::*;
pub use builders::*;
pub use credentials::*;
pub use databases::*;
pub use extract::*;
pub use fixtures::*;
pub use listings::*;
pub use proxy::*;
pub use receiver::*;
pub use streams::*;
