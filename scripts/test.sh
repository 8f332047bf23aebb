#!/usr/bin/env bash
# The whole test suite: install what is missing, bring the test servers up, lint, build, test.
# Set LOGPIPE_KEEP_TESTENV=1 to leave servers running that this run started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=test
source scripts/lib.sh

install_build_deps
# Building the node's images and the Kubernetes binaries takes minutes of a core that the steps below leave idle.
log "the real node (engine, kubelet, the project's images from its Dockerfile), made in the background"
start_node

log "cargo fmt --check"
cargo fmt --all --check
(cd collector/fuzz && cargo fmt --check)

log "fuzz targets, 30 s each"
scripts/fuzz.sh 30

use_testenv

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test: building"
cargo test --workspace --locked --no-run
node_env
log "cargo test"
cargo test --workspace --locked
