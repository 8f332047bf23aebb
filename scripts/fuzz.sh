#!/usr/bin/env bash
# Runs each cargo-fuzz target of the collector for a bounded time, starting from the committed corpus, so a
# regression in parsing, encoding or the processors fails the test suite.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# New inputs go to a temporary directory, not into the committed corpus; a crash leaves its input in
# collector/fuzz/artifacts/<target>/ and fails the run. `cargo fuzz cmin` merges findings into the corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=fuzz
source scripts/lib.sh

SECONDS_PER_TARGET=${1:-30}
CARGO_FUZZ_VERSION=0.13.2
# Plain libFuzzer coverage, no sanitizer: that builds with the stable toolchain, and the code under test is safe Rust.
FUZZ_FLAGS=(--sanitizer none -O)

if [[ $(cargo fuzz --version 2>/dev/null) != *"$CARGO_FUZZ_VERSION"* ]]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
cd collector
cargo fuzz build "${FUZZ_FLAGS[@]}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  log "$target for ${SECONDS_PER_TARGET}s"
  mkdir -p "$scratch/$target"
  status=0
  cargo fuzz run "${FUZZ_FLAGS[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$scratch/$target.log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units)' "$scratch/$target.log" || true
  if ((status != 0)); then
    tail -n 40 "$scratch/$target.log"
    die "$target failed; its input is in collector/fuzz/artifacts/$target/"
  fi
done
