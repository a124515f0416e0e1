# syntax=docker/dockerfile:1
# The ticketd image: built with the Rust toolchain, run on distroless (no shell, no package manager) as the
# unprivileged user 65532, the user the Helm chart (helm/ticketd) runs it as.
#
#   docker build -t ghcr.io/example/ticketd:0.1.0 .
#
# Kept deliberately simple: it is not built on the development machines or in CI (no Docker engine there),
# so nothing here is exercised before a real image build. The cache mounts need BuildKit (Docker >= 23).

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# protoc is vendored by build.rs (protoc-bin-vendored): no apt packages are needed.
COPY . .
# Only the server: the workspace's other binary, ticketd-bench, stays out of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ticketd --bin ticketd \
    && cp target/release/ticketd /usr/local/bin/ticketd

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /usr/local/bin/ticketd /usr/local/bin/ticketd
USER 65532:65532
WORKDIR /home/nonroot
# Listen on all interfaces inside the container (the binary's default is 127.0.0.1); flags still win.
ENV TICKETD_LISTEN=0.0.0.0:50051 \
    TICKETD_METRICS_LISTEN=0.0.0.0:9090
# 50051: gRPC, gRPC-Web, grpc.health.v1 and reflection; 9090: Prometheus metrics.
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/ticketd"]
