# A stand-in for the public rust:<version>-bookworm image, for machines that reach no image registry: Debian's
# base plus the compilers the official image carries, this machine's own Rust toolchain (its sysroot) and its extra
# certificate authorities. scripts/node.sh builds it; the project's Dockerfile is then built FROM it unchanged.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential ca-certificates zlib1g-dev \
 && rm -rf /var/lib/apt/lists/* \
 && update-ca-certificates
COPY rust/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
