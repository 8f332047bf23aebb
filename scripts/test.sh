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

started_here=0
if scripts/testenv.sh status | grep -q stopped; then started_here=1; fi
stop_testenv() { [[ $started_here == 1 && -z ${LOGPIPE_KEEP_TESTENV:-} ]] && scripts/testenv.sh down; true; }
trap stop_testenv EXIT
eval "$(scripts/testenv.sh up)"

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
