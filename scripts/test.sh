#!/usr/bin/env bash
# The whole test suite: install what is missing, bring the test servers up, lint, build, test.
# Set LOGPIPE_KEEP_TESTENV=1 to leave servers running that this run started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=test
source scripts/lib.sh

install_build_deps
log "cargo fmt --check"
cargo fmt --all --check
(cd collector/fuzz && cargo fmt --check)

log "fuzz targets, 30 s each"
scripts/fuzz.sh 30

use_testenv

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
