#!/usr/bin/env bash
# Logs from pod log files to a searchable index, on this machine, in one command: the test servers (kube-apiserver,
# Kafka-protocol broker, Elasticsearch-API server), the operator, the collector agent and the indexer, with the
# pipeline of examples/local-pipeline.yaml. Ctrl-C stops everything it started, the test servers included if they
# were not running before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=demo
source scripts/lib.sh

install_build_deps
log "building the operator, the collector and the demo"
cargo build --locked -p logpipe-operator -p logpipe-collector -p logpipe-tests --bins

use_testenv

# Not exec: the EXIT trap runs after the demo. It handles Ctrl-C itself; the shell only waits for it.
trap 'true' INT
target/debug/logpipe-demo "$@"
