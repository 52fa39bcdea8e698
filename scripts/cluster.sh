#!/usr/bin/env bash
# A disposable, real Kubernetes control plane on loopback for the real-cluster suite
# (tests/operator_cluster.rs) and for manual experiments: etcd + kube-apiserver +
# kube-controller-manager, built from Go modules by scripts/install/control-plane.sh.
# Needs Go (for that build), openssl and bash; no container engine, no kubelet (pods stay
# Pending: nothing schedules or runs them).
#
#   scripts/cluster.sh up DIR                 start everything; writes DIR/kubeconfig (admin)
#   scripts/cluster.sh down DIR               stop everything, remove the data (DIR/logs stay)
#   scripts/cluster.sh restart-apiserver DIR  stop kube-apiserver, start it again, wait for /readyz
#   scripts/cluster.sh compact DIR            compact etcd at its current revision (older watches
#                                             and continue tokens get 410 Gone)
#   scripts/cluster.sh env DIR                print the ports and URLs (shell variables)
#
# DIR holds pki/ (a CA, kube-apiserver's serving cert for 127.0.0.1/localhost, the
# service-account signing key, an admin client cert in group system:masters and one for
# kube-controller-manager), etcd/ (data), logs/*.log, *.pid, cluster.env and kubeconfig.
# SECURESCORE_CLUSTER_NO_KCM=1 skips kube-controller-manager (no garbage collection, no
# namespace finalization: a deleted namespace stays Terminating);
# SECURESCORE_CLUSTER_APISERVER_ARGS adds kube-apiserver flags (e.g. for scripts/bench.sh).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
READY_TIMEOUT="${SECURESCORE_CLUSTER_READY_TIMEOUT:-180}"

fail() {
  echo "cluster.sh: $*" >&2
  exit 1
}
usage() {
  sed -n '7,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Sets PORT to a TCP port nothing listens on now (bash's /dev/tcp: a refused connection means
# free) and that this run has not handed out yet. Ports come from below the kernel's ephemeral
# range: a port inside it can be taken as the local end of any outgoing connection between this
# check and the server's bind (seen: etcd failing with "address already in use").
TAKEN=""
EPHEMERAL_LOW="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
PORT_LOW=10000
PORT_SPAN=$((EPHEMERAL_LOW - PORT_LOW))
[ "$PORT_SPAN" -ge 1000 ] || fail "the ephemeral port range starts at $EPHEMERAL_LOW: no room for fixed ports below it"
free_port() {
  local tries=0
  while [ $tries -lt 200 ]; do
    PORT=$((PORT_LOW + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
    case " $TAKEN " in *" $PORT "*) ;; *)
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        TAKEN="$TAKEN $PORT"
        return 0
      fi
      ;;
    esac
    tries=$((tries + 1))
  done
  fail "found no free TCP port on 127.0.0.1"
}

# GET an https URL path on kube-apiserver with the admin cert; prints "CODE BODY".
apiserver_get() {
  local path="$1"
  if command -v curl >/dev/null 2>&1; then
    curl -sS --max-time 5 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" \
      --key "$DIR/pki/admin.key" -o /dev/stdout -w ' %{http_code}' \
      "https://127.0.0.1:$APISERVER_PORT$path" 2>/dev/null | awk '{ code = $NF; $NF = ""; print code " " $0 }'
  else
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" |
      timeout 5 openssl s_client -quiet -verify_return_error -CAfile "$DIR/pki/ca.crt" \
        -cert "$DIR/pki/admin.crt" -key "$DIR/pki/admin.key" \
        -connect "127.0.0.1:$APISERVER_PORT" 2>/dev/null |
      tr -d '\r' | awk 'NR == 1 { code = $2 } body { b = b $0 } /^$/ { body = 1 } END { print code " " b }'
  fi
}

# POST JSON to etcd's gRPC gateway (plain HTTP on loopback); prints the response body.
etcd_post() {
  local path="$1" body="$2" response
  exec 3<>"/dev/tcp/127.0.0.1/$ETCD_PORT" || fail "etcd does not accept connections on 127.0.0.1:$ETCD_PORT"
  printf 'POST %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' \
    "$path" "${#body}" "$body" >&3
  response="$(timeout 10 cat <&3 | tr -d '\r')"
  exec 3<&-
  case "$(printf '%s\n' "$response" | head -1)" in
    *" 200 "*) printf '%s\n' "$response" | sed '1,/^$/d' ;;
    *) fail "etcd $path failed: $(printf '%s' "$response" | head -c 500)" ;;
  esac
}

alive() { [ -s "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

# Start a component in the background; its command line is kept in DIR/NAME.cmd for restarts.
start() {
  local name="$1"
  shift
  printf '%q ' "$@" >"$DIR/$name.cmd"
  "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

# Stop a component: SIGTERM, then SIGKILL after 15 s.
stop() {
  local name="$1" pid waited=0
  [ -s "$DIR/$name.pid" ] || return 0
  pid="$(cat "$DIR/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 150 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/$name.pid"
}

logtail() {
  echo "--- last lines of $DIR/logs/$1.log ---" >&2
  tail -n 30 "$DIR/logs/$1.log" >&2 || true
}

wait_for_apiserver() {
  local deadline=$((SECONDS + READY_TIMEOUT)) answer=""
  while [ $SECONDS -lt $deadline ]; do
    alive kube-apiserver || {
      logtail kube-apiserver
      fail "kube-apiserver exited before it was ready (log: $DIR/logs/kube-apiserver.log)"
    }
    answer="$(apiserver_get /readyz || true)"
    [ "${answer%% *}" = 200 ] && return 0
    sleep 0.5
  done
  logtail kube-apiserver
  fail "kube-apiserver was not ready within ${READY_TIMEOUT}s (last /readyz: ${answer:-no answer}; log: $DIR/logs/kube-apiserver.log)"
}

wait_for_etcd() {
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    alive etcd || {
      logtail etcd
      fail "etcd exited before it was ready (log: $DIR/logs/etcd.log)"
    }
    if (exec 3<>"/dev/tcp/127.0.0.1/$ETCD_PORT") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  logtail etcd
  fail "etcd did not listen on 127.0.0.1:$ETCD_PORT within 60s"
}

start_apiserver() {
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
    --endpoint-reconciler-type=none \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --client-ca-file="$DIR/pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/pki/service-account.pub" \
    --service-account-signing-key-file="$DIR/pki/service-account.key" \
    --service-cluster-ip-range=10.0.0.0/16 \
    --cert-dir="$DIR/pki/apiserver-generated" \
    --profiling=false --logging-format=text -v=1 ${APISERVER_EXTRA_ARGS:-}
}

# openssl: one key (EC P-256, PKCS#8) and one cert signed by the CA.
cert() {
  local name="$1" subject="$2" ext="$3"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DIR/pki/$name.key" 2>/dev/null
  openssl req -new -key "$DIR/pki/$name.key" -subj "$subject" -out "$DIR/pki/$name.csr"
  printf '%s\n' "$ext" >"$DIR/pki/$name.ext"
  openssl x509 -req -in "$DIR/pki/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -days 30 -sha256 -extfile "$DIR/pki/$name.ext" -out "$DIR/pki/$name.crt" 2>/dev/null
}

make_pki() {
  mkdir -p "$DIR/pki"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DIR/pki/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$DIR/pki/ca.key" -subj "/CN=securescore-test-ca" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$DIR/pki/ca.crt"
  cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  cert admin "/O=system:masters/CN=securescore-admin" "$client"
  cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
  # The key that signs ServiceAccount tokens (TokenRequest) and the public half that verifies them.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$DIR/pki/service-account.key" 2>/dev/null
  openssl pkey -in "$DIR/pki/service-account.key" -pubout -out "$DIR/pki/service-account.pub"
}

b64() { base64 <"$1" | tr -d '\n'; }

kubeconfig() {
  local user="$1"
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: securescore-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(b64 "$DIR/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(b64 "$DIR/pki/$user.crt")
    client-key-data: $(b64 "$DIR/pki/$user.key")
contexts:
- name: securescore-test
  context:
    cluster: securescore-test
    user: $user
    namespace: default
current-context: securescore-test
EOF
}

load_env() {
  [ -s "$DIR/cluster.env" ] || fail "$DIR holds no cluster (no $DIR/cluster.env): run 'scripts/cluster.sh up $DIR' first"
  # shellcheck disable=SC1091
  . "$DIR/cluster.env"
  BIN="$CONTROL_PLANE_BIN"
}

up() {
  for tool in openssl base64; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is required"
  done
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  if alive etcd || alive kube-apiserver || alive kube-controller-manager; then
    fail "a cluster is already running in $DIR: run 'scripts/cluster.sh down $DIR' first"
  fi
  rm -rf "$DIR/etcd" "$DIR/pki" "$DIR/kubeconfig" "$DIR/cluster.env"
  mkdir -p "$DIR/logs"
  BIN="$(bash "$REPO/scripts/install/control-plane.sh" | tail -1)" ||
    fail "cannot build the control plane (scripts/install/control-plane.sh failed)"
  [ -x "$BIN/kube-apiserver" ] || fail "scripts/install/control-plane.sh printed '$BIN', which has no kube-apiserver"
  make_pki || fail "generating the certificates with openssl failed"
  APISERVER_EXTRA_ARGS="${SECURESCORE_CLUSTER_APISERVER_ARGS:-}"
  free_port && ETCD_PORT=$PORT
  free_port && ETCD_PEER_PORT=$PORT
  free_port && APISERVER_PORT=$PORT
  free_port && KCM_PORT=$PORT
  cat >"$DIR/cluster.env" <<EOF
CONTROL_PLANE_BIN=$BIN
ETCD_PORT=$ETCD_PORT
ETCD_URL=http://127.0.0.1:$ETCD_PORT
APISERVER_PORT=$APISERVER_PORT
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT
KCM_PORT=$KCM_PORT
KUBECONFIG_PATH=$DIR/kubeconfig
APISERVER_EXTRA_ARGS="${APISERVER_EXTRA_ARGS:-}"
EOF
  start etcd "$BIN/etcd" --name securescore-test --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "securescore-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn
  wait_for_etcd
  start_apiserver
  wait_for_apiserver
  kubeconfig admin >"$DIR/kubeconfig"
  kubeconfig kube-controller-manager >"$DIR/pki/kube-controller-manager.kubeconfig"
  if [ "${SECURESCORE_CLUSTER_NO_KCM:-}" != 1 ]; then
    start kube-controller-manager "$BIN/kube-controller-manager" \
      --kubeconfig="$DIR/pki/kube-controller-manager.kubeconfig" \
      --authentication-kubeconfig="$DIR/pki/kube-controller-manager.kubeconfig" \
      --authorization-kubeconfig="$DIR/pki/kube-controller-manager.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
      --use-service-account-credentials=true \
      --controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller \
      --service-account-private-key-file="$DIR/pki/service-account.key" \
      --root-ca-file="$DIR/pki/ca.crt" --cert-dir="$DIR/pki/kcm-generated" \
      --logging-format=text -v=1
    sleep 1
    alive kube-controller-manager || {
      logtail kube-controller-manager
      fail "kube-controller-manager exited at start (log: $DIR/logs/kube-controller-manager.log)"
    }
  fi
  echo "cluster.sh: kube-apiserver ready at https://127.0.0.1:$APISERVER_PORT; KUBECONFIG=$DIR/kubeconfig" >&2
}

down() {
  [ -d "$DIR" ] || return 0
  DIR="$(cd "$DIR" && pwd)"
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  rm -rf "$DIR/etcd" "$DIR/pki" "$DIR/kubeconfig" "$DIR/cluster.env" "$DIR"/*.cmd
}

restart_apiserver() {
  load_env
  stop kube-apiserver
  start_apiserver
  wait_for_apiserver
}

compact() {
  load_env
  local status revision
  # Any range answer carries the store's current revision in its header.
  status="$(etcd_post /v3/kv/range '{"key":"AA==","limit":1}')"
  revision="$(printf '%s' "$status" | sed -n 's/.*"revision":"\{0,1\}\([0-9]*\).*/\1/p' | head -1)"
  [ -n "$revision" ] || fail "no revision in etcd's answer: $status"
  etcd_post /v3/kv/compaction "{\"revision\":\"$revision\",\"physical\":true}" >/dev/null
  echo "$revision"
}

[ $# -eq 2 ] || usage
DIR="$2"
case "$1" in
  up) up ;;
  down) down ;;
  restart-apiserver) restart_apiserver ;;
  compact) compact ;;
  env) load_env && cat "$DIR/cluster.env" ;;
  *) usage ;;
esac
