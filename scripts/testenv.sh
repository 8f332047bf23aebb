#!/usr/bin/env bash
# The real servers logpipe's tests run against, all on loopback:
#   etcd + kube-apiserver + kube-controller-manager (v1.20.2, built from Debian's source package by build-kube.sh)
#   noida-db, which speaks the Kafka protocol and the Elasticsearch REST API;
#   and installs Helm's engine (helm-python-sdk) for scripts/chart.py.
#
#   testenv.sh install   install what the servers need (idempotent)
#   testenv.sh up        install, start what is not running, wait until ready, print the environment
#   testenv.sh env       print the environment the tests read (export lines)
#   testenv.sh status    say what runs
#   testenv.sh down      stop the processes this script started, nothing else
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${LOGPIPE_CACHE:-$HOME/.cache/logpipe}
STATE=${LOGPIPE_TESTENV_DIR:-$CACHE/testenv}
NOIDA_VERSION=0.2.3
NOIDA_VENV=$CACHE/noida-$NOIDA_VERSION
# Helm v4's engine as a library, for the chart's lint and render (scripts/chart.py); no helm binary ships on PyPI.
HELM_SDK_VERSION=0.2.2
HELM_VENV=$CACHE/helm-python-sdk-$HELM_SDK_VERSION
# The wheel's console script is a Python wrapper that runs the server as a child; run the server itself, so that
# stopping the process we started stops the server.
noida_server() { find "$NOIDA_VENV" -path '*/noida_db/noida-db' -type f -perm -u+x | head -n 1; }
ETCD_PORT=${LOGPIPE_ETCD_PORT:-23790}
APISERVER_PORT=${LOGPIPE_APISERVER_PORT:-16443}
KAFKA_PORT=${LOGPIPE_KAFKA_PORT:-19092}
ES_PORT=${LOGPIPE_ES_PORT:-19200}
# Where the apiserver and noida-db listen. Loopback for the tests on this machine; scripts/node.sh runs a second set
# on the Docker engine's bridge address, the one address of this machine that its pods can reach.
HOST=${LOGPIPE_TESTENV_HOST:-127.0.0.1}
KUBECONFIG_FILE=$STATE/kubeconfig
READY_TIMEOUT_S=${LOGPIPE_TESTENV_TIMEOUT:-120}

LOG_PREFIX=testenv
source "$HERE/lib.sh"

install() {
  lock "$CACHE/.testenv-install.lock"
  apt_install etcd-server openssl curl ca-certificates python3-venv
  KUBE_BIN=$("$HERE/build-kube.sh")
  if [[ -z $(noida_server) ]]; then
    log "installing noida-db $NOIDA_VERSION"
    python3 -m venv "$NOIDA_VENV"
    "$NOIDA_VENV/bin/pip" install -q "noida-db==$NOIDA_VERSION"
  fi
  if ! "$HELM_VENV/bin/python" -c 'import helm_python' 2>/dev/null; then
    log "installing helm-python-sdk $HELM_SDK_VERSION"
    python3 -m venv "$HELM_VENV"
    "$HELM_VENV/bin/pip" install -q "helm-python-sdk==$HELM_SDK_VERSION"
  fi
  unlock
}

kube_bin() { KUBE_BIN=${KUBE_BIN:-$("$HERE/build-kube.sh")}; }

# A port held by a process this script did not start is an error: the tests would silently use a stranger.
ensure_free() {
  local name=$1 port=$2 host=${3:-$HOST}
  running "$name" && return
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    die "port $port (for $name) is taken by a process testenv did not start; stop it or set the port variable"
  fi
}

make_certs() {
  local pki=$STATE/pki
  [[ -f $pki/token ]] && return
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=logpipe-test-ca -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:%s,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc\n' "$HOST" >san.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile san.ext \
      -out apiserver.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >token
    printf '%s,admin,admin,system:masters\n' "$(cat token)" >tokens.csv
  )
}

write_kubeconfig() {
  local pki=$STATE/pki
  cat >"$KUBECONFIG_FILE" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: logpipe-test
  cluster:
    server: https://$HOST:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: admin
  user:
    token: $(cat "$pki/token")
contexts:
- name: logpipe-test
  context: {cluster: logpipe-test, user: admin, namespace: default}
current-context: logpipe-test
YAML
}

start_kube() {
  kube_bin
  local pki=$STATE/pki
  ensure_free etcd "$ETCD_PORT" 127.0.0.1
  ensure_free etcd "$((ETCD_PORT + 10))" 127.0.0.1
  ensure_free kube-apiserver "$APISERVER_PORT"
  spawn etcd etcd --name logpipe-test --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
    --initial-cluster "logpipe-test=http://127.0.0.1:$((ETCD_PORT + 10))"
  wait_for etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  spawn kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$HOST" --advertise-address "$HOST" --secure-port "$APISERVER_PORT" --insecure-port 0 \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --token-auth-file "$pki/tokens.csv" --authorization-mode RBAC \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true
  wait_for kube-apiserver curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(cat "$pki/token")" \
    "https://$HOST:$APISERVER_PORT/readyz"

  spawn kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_FILE" --leader-elect=false --port 0 --secure-port 0 \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=false --controllers '*'
  # Garbage collection needs the controller-manager to have synced its informers; its log says when.
  wait_for kube-controller-manager grep -q 'Started "garbagecollector"' "$STATE/kube-controller-manager.log"
}

start_noida() {
  running noida-db && return
  ensure_free noida-db "$KAFKA_PORT"
  ensure_free noida-db "$ES_PORT"
  # noida-db keeps every topic as one JSON file and never compacts it: benchmarks left 14 GiB behind and filled the
  # disk CI shares. Tests make their own topics and indices, so each start of the server begins empty.
  rm -rf "$STATE/noida"
  spawn noida-db "$(noida_server)" start --data-dir "$STATE/noida" --only kafka,elasticsearch --host "$HOST" \
    --kafka-port "$KAFKA_PORT" --elasticsearch-port "$ES_PORT"
  wait_for noida-db curl -sf "http://$HOST:$ES_PORT/"
  wait_for noida-db bash -c "exec 3<>/dev/tcp/$HOST/$KAFKA_PORT"
}

print_env() {
  cat <<ENV
export KUBECONFIG=$KUBECONFIG_FILE
export LOGPIPE_TEST_KAFKA=$HOST:$KAFKA_PORT
export LOGPIPE_TEST_ELASTICSEARCH=http://$HOST:$ES_PORT
export LOGPIPE_NOIDA_BIN=$(noida_server)
export LOGPIPE_HELM_PYTHON=$HELM_VENV/bin/python
ENV
}

up() {
  install
  mkdir -p "$STATE"
  make_certs
  write_kubeconfig
  start_kube
  start_noida
  log "ready"
  print_env
}

down() {
  local name
  for name in noida-db kube-controller-manager kube-apiserver etcd; do stop "$name"; done
}

status() { print_status etcd kube-apiserver kube-controller-manager noida-db; }

case ${1:-} in
  install) install ;;
  up) up ;;
  env) print_env ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 install|up|env|status|down" ;;
esac
