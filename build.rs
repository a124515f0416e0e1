use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    // A vendored protoc keeps `cargo build` free of system packages.
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let protos = [
        "proto/ticketd/v1/common.proto",
        "proto/ticketd/v1/tickets.proto",
        "proto/ticketd/v1/pipelines.proto",
        "proto/ticketd/v1/properties.proto",
        "proto/ticketd/v1/associations.proto",
        "proto/ticketd/v1/cards.proto",
        "proto/ticketd/v1/portals.proto",
        "proto/ticketd/v1/agents.proto",
        "proto/ticketd/v1/escalation.proto",
        "proto/ticketd/v1/rules.proto",
        "proto/ticketd/v1/webhooks.proto",
    ];
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("ticketd_descriptor.bin"))
        // Ordered maps make encoded requests deterministic, which the idempotency fingerprint relies on.
        .btree_map(".")
        // google.rpc.Status is tonic-types' (the same message the rich error details use).
        .extern_path(".google.rpc.Status", "::tonic_types::Status")
        // Requests are checked as they are decoded, and one that does not decode is the client's fault:
        // INVALID_ARGUMENT, not tonic-prost's INTERNAL (src/api/codec.rs, which finds descriptors by name).
        .codec_path("crate::api::codec::CheckedCodec")
        .compile_with_config(config, &protos, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
