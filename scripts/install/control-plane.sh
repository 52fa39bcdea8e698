#!/usr/bin/env bash
# Builds the real control plane the real-cluster suite runs against (kube-apiserver,
# kube-controller-manager, etcd) from Go modules, idempotently, into a cache OUTSIDE the repo:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/securescore/control-plane/<k8s-version>/bin
# The versions are pinned by tests/cluster/go.mod (k8s.io/kubernetes + every staging module
# replaced by its matching v0.Y.Z, and go.etcd.io/etcd/server/v3). Needs only Go (the version
# that go.mod names) and the Go module proxy; no container engine, no prebuilt binary.
# A run is a no-op when the binaries for the pinned go.mod/go.sum are already there; otherwise
# Go's module and build caches make a rebuild after a cache wipe much faster than the first one.
# Prints the bin directory on its last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
MODULE="$REPO/tests/cluster"

fail() {
  echo "control-plane.sh: $*" >&2
  exit 1
}
command -v go >/dev/null 2>&1 || fail "'go' is required to build kube-apiserver and etcd (Go $(sed -n 's/^go //p' "$MODULE/go.mod") or newer)"
K8S_VERSION="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$MODULE/go.mod")"
[ -n "$K8S_VERSION" ] || fail "tests/cluster/go.mod does not require k8s.io/kubernetes"
# What the binaries were built from: a change to the pins rebuilds.
STAMP="$(cat "$MODULE/go.mod" "$MODULE/go.sum" | sha256sum | cut -c1-16)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/securescore/control-plane/$K8S_VERSION"
BIN="$CACHE/bin"
COMMANDS=(kube-apiserver kube-controller-manager etcd)

built() {
  [ "$(cat "$BIN/.stamp" 2>/dev/null)" = "$STAMP" ] || return 1
  for cmd in "${COMMANDS[@]}"; do [ -x "$BIN/$cmd" ] || return 1; done
}
if built; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$CACHE"
WORK="$(mktemp -d "$CACHE/.build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# The version kube-apiserver reports (/version, kubectl version); Kubernetes' own build sets the
# same variables (hack/lib/version.sh).
minor="${K8S_VERSION#v*.}"
minor="${minor%%.*}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
started=$SECONDS
echo "control-plane.sh: building kube-apiserver, kube-controller-manager and etcd $K8S_VERSION with $(go env GOVERSION) (the first build takes a long while)" >&2
(
  cd "$MODULE"
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
  go build -trimpath -ldflags "$LDFLAGS" -o "$WORK/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  go build -trimpath -ldflags "-s -w" -o "$WORK/etcd" go.etcd.io/etcd/server/v3
) || fail "building the control plane from tests/cluster/go.mod failed (see the go output above)"
for cmd in "${COMMANDS[@]}"; do
  [ -x "$WORK/$cmd" ] || fail "the build did not produce $cmd"
done
"$WORK/kube-apiserver" --version >&2 || fail "the built kube-apiserver does not run"
"$WORK/etcd" --version >&2 || fail "the built etcd does not run"
mkdir -p "$BIN"
for cmd in "${COMMANDS[@]}"; do mv -f "$WORK/$cmd" "$BIN/$cmd"; done # same filesystem: atomic
echo "$STAMP" >"$BIN/.stamp"
echo "control-plane.sh: built into $BIN in $((SECONDS - started)) s" >&2
echo "$BIN"
