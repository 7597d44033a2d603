# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run in a slim image as a non-root user.
# Two images from one build: the gateway (the default, last stage) and broker-sim
# (`--target broker-sim`), which docker-compose.yml uses as the paper broker.
#
#   docker build -t brokergraph .                                 # production gateway
#   docker build --build-arg EMBEDDED_BROKER=1 -t brokergraph .   # with the paper broker
#
# The cargo commands are scripts/image-build's; CI runs them without a container
# builder (`scripts/image-build --check`) so this file cannot rot.
FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies in a layer of their own: the manifests and the lock file, with
# empty crates in place of the sources, so a change to the code rebuilds only the
# workspace's own crates.
COPY Cargo.toml Cargo.lock ./
COPY broker-sim/Cargo.toml broker-sim/
COPY tools/Cargo.toml tools/
COPY scripts/image-build scripts/
ARG EMBEDDED_BROKER=0
RUN mkdir -p src benches broker-sim/src tools/src/bench tools/src/soak \
 && touch src/lib.rs broker-sim/src/lib.rs \
 && for main in src/main.rs benches/hot_path.rs broker-sim/src/main.rs \
      tools/src/bench/main.rs tools/src/soak/main.rs; do echo 'fn main() {}' > "$main"; done \
 && EMBEDDED_BROKER=$EMBEDDED_BROKER scripts/image-build

COPY . .
# The commit, for brokergraph_build_info (read at compile time); after the
# dependency layer, so a new commit does not rebuild the dependencies.
ARG REVISION=unknown
ENV BROKERGRAPH_REVISION=$REVISION
# COPY keeps the sources' own times, which may be older than the empty crates
# built above: make cargo see them as new.
RUN touch src/lib.rs src/main.rs broker-sim/src/lib.rs broker-sim/src/main.rs \
 && EMBEDDED_BROKER=$EMBEDDED_BROKER scripts/image-build

FROM debian:bookworm-slim AS runtime
RUN useradd --system --uid 10001 --no-create-home brokergraph
USER 10001

FROM runtime AS broker-sim
LABEL org.opencontainers.image.title="broker-sim" \
      org.opencontainers.image.description="The paper broker brokergraph is tested against"
COPY --from=build /src/target/release/broker-sim /usr/local/bin/broker-sim
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/broker-sim", "--listen", "0.0.0.0:9100"]

FROM runtime AS gateway
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="brokergraph" \
      org.opencontainers.image.description="A GraphQL gateway in front of a broker's REST API" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.created="$CREATED"
COPY --from=build /src/target/release/brokergraph /usr/local/bin/brokergraph
# Listening on all interfaces means the gateway refuses to start without gateway API
# keys: mount a config file with [[keys]] (see docs/configuration.md) and set
# BROKERGRAPH_CONFIG, plus BROKERGRAPH_BROKER_URL and BROKERGRAPH_BROKER_API_KEY.
ENV BROKERGRAPH_LISTEN=0.0.0.0:8080
EXPOSE 8080
# The binary asks its own /healthz: no curl in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/brokergraph", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/brokergraph"]
CMD ["serve"]
