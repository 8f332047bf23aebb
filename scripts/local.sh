#!/usr/bin/env bash
# The main job on any machine: the agent on the bundled sample of pod logs, printing documents to stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=local
source scripts/lib.sh
install_build_deps
exec cargo run -p logpipe-collector -- agent --config examples/local.yaml "$@"
