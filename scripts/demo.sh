#!/usr/bin/env bash
# Logs from pods to a searchable index, on this machine, in one command. Where a Docker engine is installed
# (Debian's docker.io; `scripts/node.sh install` installs it), on the real node of scripts/node.sh: the chart
# installed as a user installs it, from the images the repository's Dockerfile builds, and pods writing logs.
# Elsewhere, or with --local, as local processes: the test servers (kube-apiserver, Kafka-protocol broker,
# Elasticsearch-API server), the operator, the collector agent and the indexer, with the pipeline of
# examples/local-pipeline.yaml, and pod log files written in the kubelet's layout. Ctrl-C stops everything it
# started, the servers and the node included if they were not running before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_PREFIX=demo
source scripts/lib.sh

mode=local
if [[ ${1:-} == --local ]]; then
  shift
elif command -v dockerd >/dev/null; then
  mode=node
fi

install_build_deps
log "building the demo"
cargo build --locked -p logpipe-operator -p logpipe-collector -p logpipe-tests --bins

if [[ $mode == node ]]; then
  log "the real node (scripts/node.sh): engine, kubelet, images; minutes when the images are cold"
  use_node
  set -- --node "$@"
else
  use_testenv
fi

# Not exec: the EXIT trap runs after the demo. It handles Ctrl-C itself; the shell only waits for it.
trap 'true' INT
target/debug/logpipe-demo "$@"
