#!/usr/bin/env bash
# Builds Kubernetes v1.20.2 from Debian 12's `kubernetes` source package, once, into a cache outside the work tree:
# the control plane the tests run (kube-apiserver, kube-controller-manager, kube-scheduler), the test node's kubelet
# and kube-proxy, and the pause binary of build/pause that the node's pod sandboxes run. No registry ships these
# binaries; Debian's source package holds the whole tree with vendor/. Prints the directory holding the binaries.
set -euo pipefail

KUBE_CACHE=${LOGPIPE_CACHE:-$HOME/.cache/logpipe}/kube-1.20.2
BIN_DIR=$KUBE_CACHE/bin

LOG_PREFIX=build-kube
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet)

built() {
  local b
  for b in "${COMMANDS[@]}" pause; do [[ -x $BIN_DIR/$b ]] || return 1; done
}
if built; then
  echo "$BIN_DIR"
  exit 0
fi
lock "$KUBE_CACHE/.lock"
if built; then
  echo "$BIN_DIR"
  exit 0
fi

# apt-get source needs deb-src entries; derive them from the machine's own deb entries.
enable_deb_src() {
  local out=/etc/apt/sources.list.d/logpipe-deb-src
  if apt-get source --print-uris kubernetes >/dev/null 2>&1; then return; fi
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$out.sources"
  fi
  if [[ -f /etc/apt/sources.list ]]; then
    sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$out.list"
  fi
  apt_locked update -qq
  export LOGPIPE_APT_UPDATED=1
}

enable_deb_src
apt_install golang-go rsync make dpkg-dev openssl golang-github-modern-go-reflect2-dev gcc libc6-dev

mkdir -p "$KUBE_CACHE/src"
cd "$KUBE_CACHE/src"
src=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
if [[ -z $src ]]; then
  log "fetching the source package"
  apt-get source -qq kubernetes >/dev/null
  src=$(find . -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
fi
cd "$src"

# The vendored reflect2 1.0.1 segfaults under Go >= 1.18 as soon as a custom resource is written; Debian's 1.0.2 works.
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2
cp -r "$reflect2" vendor/github.com/modern-go/reflect2

log "building (several minutes on two cores)"
export GO111MODULE=off GOFLAGS= GOCACHE=$KUBE_CACHE/gocache
make WHAT="${COMMANDS[*]/#/cmd/}" >"$KUBE_CACHE/build.log" 2>&1 || {
  tail -n 40 "$KUBE_CACHE/build.log" >&2
  exit 1
}

mkdir -p "$BIN_DIR"
for b in "${COMMANDS[@]}"; do
  install -m 0755 "$(find _output -type f -name "$b" -perm -u+x | head -n 1)" "$BIN_DIR/$b"
done
# Static, as the upstream pause image is: it runs alone in an otherwise empty image.
gcc -Os -static -Wall -Werror -DVERSION="v3.4-logpipe" -o "$BIN_DIR/pause" build/pause/linux/pause.c
echo "$BIN_DIR"
