//! ticketd: a customer-support ticket service spoken to over gRPC.
//!
//! Layers, top to bottom: [`api`] (proto ⇄ domain, errors → status), [`domain`] (types and rules),
//! [`store`] (sea-orm). [`Application`] wires them into a server that `main.rs` and the tests both run.

pub mod api;
pub mod auth;
pub mod availability;
pub mod config;
pub mod cors;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod metrics;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod web;

pub use server::Application;

/// Generated protobuf types, clients and servers of `ticketd.v1`.
pub mod proto {
    tonic::include_proto!("ticketd.v1");
    /// Encoded descriptors of every ticketd proto file, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("ticketd_descriptor");
}
