# Sourced by the other scripts: logging and idempotent installs from Debian's packages.

log() { echo "${LOG_PREFIX:-logpipe}: $*" >&2; }
die() { log "$*"; exit 1; }

# apt-get, one at a time: test.sh installs the node's packages in the background while the test servers install
# theirs, and apt's own locks make a second apt-get fail rather than wait.
apt_locked() { flock /tmp/logpipe-apt.lock apt-get "$@"; }

# Installs the Debian packages that are missing; runs `apt-get update` at most once per process tree.
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  log "apt-get install ${missing[*]}"
  if [[ -z ${LOGPIPE_APT_UPDATED:-} ]]; then
    apt_locked update -qq
    export LOGPIPE_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt_locked install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# An exclusive lock on the file $1, held on descriptor 9 until unlock or exit, so that two runs of an install step
# (test.sh's and the node's, in parallel) do not fill the same cache directory at once. Unlock before starting a
# server: it would inherit the descriptor and hold the lock for as long as it runs.
lock() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1"
  flock 9
}
unlock() { exec 9>&-; }

# What building the workspace needs beyond the Rust toolchain: librdkafka is compiled from source with cmake,
# with OpenSSL and Cyrus SASL for TLS and SASL. librdkafka 2.12's cmake build includes curl/curl.h whenever TLS is
# on, even with curl off (config.h defines WITH_OAUTHBEARER_OIDC as 0, the source tests #ifdef), so it needs the
# curl headers; nothing links libcurl.
install_build_deps() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  apt_install build-essential cmake pkg-config libssl-dev libsasl2-dev libcurl4-openssl-dev curl ca-certificates \
    python3-venv
}

# Commands run when the calling script exits, last registered first.
ON_EXIT=()
on_exit() {
  ON_EXIT=("$1" "${ON_EXIT[@]}")
  trap 'for c in "${ON_EXIT[@]}"; do eval "$c" || true; done' EXIT
}

# Brings the test servers up and exports their environment (KUBECONFIG, LOGPIPE_TEST_*); stops them when the calling
# script exits if they were not running before, unless LOGPIPE_KEEP_TESTENV is set.
use_testenv() {
  # Not `status | grep -q`: grep leaves early, status dies of SIGPIPE, pipefail makes the test false, and the servers
  # could be left running after a CI run (a clean-clone run left them).
  if [[ $(scripts/testenv.sh status) == *stopped* ]] && [[ -z ${LOGPIPE_KEEP_TESTENV:-} ]]; then
    on_exit 'scripts/testenv.sh down'
  fi
  eval "$(scripts/testenv.sh up)"
}

# The same for the real node of scripts/node.sh (engine, kubelet, its control plane, the images) and its
# environment (LOGPIPE_NODE_*), in two halves: start_node runs `node.sh up` in the background, because building the
# images takes minutes that the caller can spend building too; node_env waits for it and exports what it printed.
start_node() {
  if [[ $(scripts/node.sh status) == *stopped* ]] && [[ -z ${LOGPIPE_KEEP_TESTENV:-} ]]; then
    on_exit 'scripts/node.sh down'
  fi
  NODE_ENV_FILE=$(mktemp)
  on_exit "rm -f '$NODE_ENV_FILE'"
  scripts/node.sh up >"$NODE_ENV_FILE" &
  NODE_UP_PID=$!
  on_exit "kill $NODE_UP_PID 2>/dev/null"
}

node_env() {
  wait "$NODE_UP_PID" || die "scripts/node.sh up failed; its messages are above"
  eval "$(cat "$NODE_ENV_FILE")"
}

use_node() {
  start_node
  node_env
}

# The servers testenv.sh and node.sh run: each in a session of its own, its pid in $STATE/<name>.pid and its output
# in $STATE/<name>.log, so that `down` stops exactly what `up` started. The caller sets STATE and READY_TIMEOUT_S.
running() {
  local pidfile=$STATE/$1.pid
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

spawn() {
  local name=$1; shift
  if running "$name"; then return; fi
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
  log "started $name (pid $!)"
}

# Waits until the command succeeds; fails with the server's log if it exits or the time is up.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "$what not ready after ${READY_TIMEOUT_S}s; its log:"
      tail -n 40 "$STATE/$what.log" >&2 || true
      exit 1
    fi
    running "$what" || { log "$what exited; its log:"; tail -n 40 "$STATE/$what.log" >&2; exit 1; }
    sleep 0.2
  done
}

# Stops the whole process group (children included), with SIGKILL after ten seconds.
stop() {
  local name=$1 pid
  [[ -f $STATE/$name.pid ]] || return 0
  pid=$(cat "$STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -- "-$pid" 2>/dev/null || kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 -- "-$pid" 2>/dev/null || true
    log "stopped $name"
  fi
  rm -f "$STATE/$name.pid"
}

print_status() {
  local name
  for name in "$@"; do
    if running "$name"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"; else echo "$name: stopped"; fi
  done
}
