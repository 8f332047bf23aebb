# Both images from one build of the workspace (BuildKit, for the cache mounts; the engine's built-in Dockerfile
# frontend is enough, so no `syntax` line makes the build fetch one):
#   DOCKER_BUILDKIT=1 docker build --target operator  -t ghcr.io/logpipe/logpipe-operator:0.1.0 .
#   DOCKER_BUILDKIT=1 docker build --target collector -t ghcr.io/logpipe/logpipe-collector:0.1.0 .
# RUST_IMAGE and DEBIAN_IMAGE name other base images of the same content, as scripts/node.sh does where no registry
# can be reached.
# The runtime stages hold the binary and the shared libraries it links (OpenSSL and Cyrus SASL, for librdkafka's
# TLS and SASL), nothing else: no shell tools beyond Debian's base, no compiler, no package lists.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# librdkafka is compiled from source by rdkafka-sys (cmake), against these headers (curl's only for a header its
# TLS code includes; nothing links libcurl).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libssl-dev libsasl2-dev libcurl4-openssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The release profile keeps line tables (97 MB for the operator); stripping them leaves 20 MB and keeps the symbol
# table, so a panic's backtrace still names functions.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p logpipe-operator -p logpipe-collector \
 && install -D -m 0755 -t /out target/release/logpipe-operator target/release/logpipe-collector \
 && strip --strip-debug /out/*

FROM ${DEBIAN_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libsasl2-2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot

# The operator: non-root, needs nothing writable.
FROM runtime AS operator
COPY --from=build /out/logpipe-operator /usr/local/bin/logpipe-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/logpipe-operator"]
CMD ["run"]

# The collector: agent and indexer run as the image's non-root user; the agent's DaemonSet adds the root group,
# which reads the kubelet's log files (root:root, mode 0640), and gives it the state directory with a chown.
FROM runtime AS collector
COPY --from=build /out/logpipe-collector /usr/local/bin/logpipe-collector
# Node directories are mounted at their own paths (the kubelet's symlinks point there); one below /root, as where a
# node keeps its engine's data in its home, is reached only through the image's /root, which holds nothing.
RUN chmod 0755 /root
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/logpipe-collector"]
