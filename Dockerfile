# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run in a slim image as a non-root user.
# Two images from one build: the gateway (the default, last stage) and broker-sim
# (`--target broker-sim`), which docker-compose.yml uses as the paper broker.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p brokergraph --bin brokergraph -p broker-sim --bin broker-sim

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home brokergraph
USER 10001

FROM runtime AS broker-sim
COPY --from=build /src/target/release/broker-sim /usr/local/bin/broker-sim
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/broker-sim", "--listen", "0.0.0.0:9100"]

FROM runtime AS gateway
COPY --from=build /src/target/release/brokergraph /usr/local/bin/brokergraph
# Listening on all interfaces means the gateway refuses to start without gateway API
# keys: mount a config file with [[keys]] (see docs/configuration.md) and set
# BROKERGRAPH_CONFIG, plus BROKERGRAPH_BROKER_URL and BROKERGRAPH_BROKER_API_KEY.
ENV BROKERGRAPH_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/brokergraph"]
CMD ["serve"]
