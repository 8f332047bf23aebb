#!/usr/bin/env bash
# A real Kubernetes node on this machine, for the tests that run logpipe as a user installs it:
#   - a Docker engine (Debian's docker.io) with its own socket, data root and bridge, its json-file logs rotated at
#     a small size so that rotation happens in the tests;
#   - a control plane of its own (testenv.sh's servers, on other ports, listening on the engine's bridge address:
#     that is the one address of this machine that pods can reach, and the node's clients use it too);
#   - kube-scheduler, kube-proxy (so the in-cluster `kubernetes` Service reaches the apiserver) and a kubelet that
#     runs pods through the engine (dockershim) and writes /var/log/pods as kubelets do;
#   - the images, made here because no registry can be reached: a Debian base (debootstrap), the pause image from the
#     Kubernetes source, a Rust build image with this machine's toolchain, and the project's images built by its
#     Dockerfile.
#
#   node.sh install   install the engine, debootstrap and the Kubernetes binaries (idempotent)
#   node.sh up        install, start what is not running, build the images, wait until the node is Ready, print env
#   node.sh images    (re)build the images; the project's are rebuilt from the work tree each time
#   node.sh env       print the environment the node tests read
#   node.sh status    say what runs
#   node.sh down      stop what this script started, remove the node's pods and containers
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
CACHE=${LOGPIPE_CACHE:-$HOME/.cache/logpipe}
STATE=${LOGPIPE_NODE_DIR:-$CACHE/node}
NODE_NAME=logpipe-node
# The engine's bridge: its gateway address is this machine's address on it.
BRIDGE_CIDR=${LOGPIPE_NODE_BRIDGE:-172.30.99.1/24}
BRIDGE_IP=${BRIDGE_CIDR%/*}
DOCKER_SOCK=$STATE/docker.sock
# The engine's own client: a newer one on PATH would want the buildx plugin for BuildKit builds.
DOCKER=(/usr/bin/docker --host "unix://$DOCKER_SOCK")
# The engine rotates each container's json-file log at this size, keeping this many files.
LOG_MAX_SIZE=${LOGPIPE_NODE_LOG_MAX_SIZE:-1m}
LOG_MAX_FILES=${LOGPIPE_NODE_LOG_MAX_FILES:-3}
READY_TIMEOUT_S=${LOGPIPE_NODE_TIMEOUT:-180}
# Names the chart's defaults use, so that a plain `helm install` finds the images on the node.
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
OPERATOR_IMAGE=ghcr.io/logpipe/logpipe-operator:$VERSION
COLLECTOR_IMAGE=ghcr.io/logpipe/logpipe-collector:$VERSION
LOGGER_IMAGE=logpipe.local/test-logger:latest
BASE_IMAGE=logpipe.local/debian:bookworm-slim
RUST_VERSION=$(rustc --version | cut -d' ' -f2)
# Tagged with its recipe's hash, so that a changed recipe makes a new image.
RUST_IMAGE=logpipe.local/rust:$RUST_VERSION-bookworm-$(cat "$HERE/images/rust.Dockerfile" | sha256sum | head -c 8)
# kubelet 1.20's dockershim runs every pod sandbox from this image.
PAUSE_IMAGE=k8s.gcr.io/pause:3.2

LOG_PREFIX=node
source "$HERE/lib.sh"

# The node's control plane: testenv.sh's servers, on the bridge, with ports and state of their own.
servers() {
  LOGPIPE_TESTENV_DIR=$STATE/servers LOGPIPE_TESTENV_HOST=$BRIDGE_IP \
    LOGPIPE_ETCD_PORT=24790 LOGPIPE_APISERVER_PORT=16444 LOGPIPE_KAFKA_PORT=29092 LOGPIPE_ES_PORT=29200 \
    "$HERE/testenv.sh" "$@"
}

install() {
  apt_install docker.io debootstrap iptables conntrack
  KUBE_BIN=$("$HERE/build-kube.sh")
  servers install
}

kube_bin() { KUBE_BIN=${KUBE_BIN:-$("$HERE/build-kube.sh")}; }

# runc behind runc-oom-clamp: see that file for why (this machine withholds CAP_SYS_RESOURCE).
# Pods reach this machine and nothing else: the engine neither turns on IP forwarding nor masquerades its bridge, so
# a packet from a pod is delivered to one of this machine's own addresses (the servers listen on the bridge's) or to
# another pod on the bridge, and is never routed off the machine.
start_engine() {
  mkdir -p "$STATE/docker" "$STATE/docker-exec"
  spawn dockerd dockerd --host "unix://$DOCKER_SOCK" --data-root "$STATE/docker" --exec-root "$STATE/docker-exec" \
    --pidfile "$STATE/docker-exec/dockerd.pid" --bip "$BRIDGE_CIDR" --storage-driver overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs --ip-forward=false --ip-masq=false \
    --add-runtime "logpipe-runc=$HERE/runc-oom-clamp" --default-runtime logpipe-runc \
    --log-driver json-file --log-opt "max-size=$LOG_MAX_SIZE" --log-opt "max-file=$LOG_MAX_FILES"
  wait_for dockerd "${DOCKER[@]}" version
}

kubeconfig() { echo "$STATE/servers/kubeconfig"; }

start_kubelet() {
  kube_bin
  mkdir -p "$STATE/kubelet"
  spawn kube-scheduler "$KUBE_BIN/kube-scheduler" --kubeconfig "$(kubeconfig)" --leader-elect=false \
    --port 0 --secure-port 0
  # iptables mode, as most clusters run it; conntrack limits stay the kernel's (0: do not touch the sysctls).
  spawn kube-proxy "$KUBE_BIN/kube-proxy" --kubeconfig "$(kubeconfig)" --hostname-override "$NODE_NAME" \
    --proxy-mode iptables --cluster-cidr "$BRIDGE_CIDR" --conntrack-max-per-core 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
  # No image can be pulled here, so image garbage collection must never remove one; disk-pressure eviction is left
  # to tiny thresholds because CI shares its disk with builds.
  spawn kubelet "$KUBE_BIN/kubelet" --kubeconfig "$(kubeconfig)" --hostname-override "$NODE_NAME" \
    --node-ip "$BRIDGE_IP" --container-runtime docker --docker-endpoint "unix://$DOCKER_SOCK" \
    --pod-infra-container-image "$PAUSE_IMAGE" \
    --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" --cgroup-driver cgroupfs --fail-swap-on=false \
    --address 127.0.0.1 --read-only-port 0 --healthz-bind-address 127.0.0.1 \
    --image-gc-high-threshold 100 --image-gc-low-threshold 99 \
    --eviction-hard 'memory.available<100Mi,nodefs.available<1%,imagefs.available<1%' \
    --volume-plugin-dir "$STATE/kubelet/volume-plugins"
  wait_for kubelet node_ready
}

kubectl_get() {
  local pki=$STATE/servers/pki
  curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(cat "$pki/token")" \
    "https://$BRIDGE_IP:16444$1"
}

node_ready() {
  kubectl_get "/api/v1/nodes/$NODE_NAME" |
    python3 -c 'import json,sys; c=json.load(sys.stdin)["status"]["conditions"]; sys.exit(not any(x["type"]=="Ready" and x["status"]=="True" for x in c))'
}

has_image() { "${DOCKER[@]}" image inspect "$1" >/dev/null 2>&1; }

build_base() {
  has_image "$BASE_IMAGE" && return
  local tarball=$CACHE/images/bookworm-minbase.tar
  if [[ ! -f $tarball ]]; then
    local mirror rootfs=$STATE/rootfs
    mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' | grep -v security | head -n 1)
    log "debootstrap bookworm from $mirror"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$STATE/debootstrap.log" 2>&1 ||
      { tail -n 20 "$STATE/debootstrap.log" >&2; die "debootstrap failed"; }
    mkdir -p "$(dirname "$tarball")"
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  "${DOCKER[@]}" import "$tarball" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

build_pause() {
  has_image "$PAUSE_IMAGE" && return
  kube_bin
  local dir
  dir=$(mktemp -d)
  cp "$KUBE_BIN/pause" "$dir/pause"
  tar -C "$dir" -c pause | "${DOCKER[@]}" import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
  rm -rf "$dir"
  log "imported $PAUSE_IMAGE"
}

build_rust() {
  has_image "$RUST_IMAGE" && return
  local context=$STATE/rust-context sysroot
  sysroot=$(rustc --print sysroot)
  rm -rf "$context"
  mkdir -p "$context/rust"
  # Hard links where the file system allows: the toolchain is 600 MB without its documentation.
  cp -al "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$context/rust/" 2>/dev/null ||
    cp -a "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$context/rust/"
  # This machine's own extra certificate authorities (its egress inspects TLS): cargo in the image must trust what
  # cargo here trusts to reach crates.io.
  mkdir -p "$context/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$context/ca-certificates/" 2>/dev/null || true
  cp "$HERE/images/rust.Dockerfile" "$context/Dockerfile"
  build_image "$context" -t "$RUST_IMAGE"
  rm -rf "$context"
}

# Builds run in this machine's network namespace: they fetch Debian packages and crates as this machine does, which
# the pods' bridge (no forwarding) would not let them.
build_image() {
  local context=$1; shift
  DOCKER_BUILDKIT=1 "${DOCKER[@]}" build --network host --progress plain --build-arg "DEBIAN_IMAGE=$BASE_IMAGE" "$@" \
    "$context" \
    >"$STATE/build.log" 2>&1 || { tail -n 40 "$STATE/build.log" >&2; die "docker build $* failed"; }
  log "built $*"
}

images() {
  build_base
  build_pause
  build_rust
  build_image "$HERE/images" -f "$HERE/images/logger.Dockerfile" -t "$LOGGER_IMAGE"
  log "building the project's images from its Dockerfile (minutes when cold)"
  build_image "$ROOT" --build-arg "RUST_IMAGE=$RUST_IMAGE" --target operator -t "$OPERATOR_IMAGE"
  build_image "$ROOT" --build-arg "RUST_IMAGE=$RUST_IMAGE" --target collector -t "$COLLECTOR_IMAGE"
}

print_env() {
  servers env | sed 's/^export KUBECONFIG=/export LOGPIPE_NODE_KUBECONFIG=/; s/LOGPIPE_TEST_/LOGPIPE_NODE_/'
  cat <<ENV
export LOGPIPE_NODE_NAME=$NODE_NAME
export LOGPIPE_NODE_DOCKER_HOST=unix://$DOCKER_SOCK
export LOGPIPE_NODE_CONTAINERS_DIR=$STATE/docker/containers
export LOGPIPE_NODE_LOGGER_IMAGE=$LOGGER_IMAGE
export LOGPIPE_NODE_OPERATOR_IMAGE=$OPERATOR_IMAGE
export LOGPIPE_NODE_COLLECTOR_IMAGE=$COLLECTOR_IMAGE
ENV
}

up() {
  install
  mkdir -p "$STATE"
  start_engine
  # The node's cluster starts empty: the kubelet would otherwise bring back the pods of an earlier run.
  if servers status | grep -q 'etcd: stopped'; then rm -rf "$STATE/servers/etcd"; fi
  servers up >/dev/null
  images
  start_kubelet
  log "ready"
  print_env
}

down() {
  local name
  for name in kubelet kube-proxy kube-scheduler; do stop "$name"; done
  if running dockerd; then
    local ids
    ids=$("${DOCKER[@]}" ps -aq)
    [[ -z $ids ]] || "${DOCKER[@]}" rm -f $ids >/dev/null
  fi
  stop dockerd
  # A stopped kubelet leaves its root directory (which it bind-mounts on itself) and its pods' secret volumes
  # mounted, and nothing else would unmount them.
  awk -v dir="$STATE/kubelet" '$2 == dir || index($2, dir "/") == 1 { print $2 }' /proc/mounts | sort -r |
    xargs -r -n 1 umount -l
  servers down
}

status() {
  print_status dockerd kube-scheduler kube-proxy kubelet
  servers status
}

case ${1:-} in
  install) install ;;
  up) up ;;
  images) mkdir -p "$STATE"; start_engine; images ;;
  env) print_env ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 install|up|images|env|status|down" ;;
esac
