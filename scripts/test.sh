#!/usr/bin/env bash
# The whole test suite. Installs, idempotently, whatever the tests need on a fresh machine
# (including the real control plane, built from Go modules), then runs fmt, clippy and
# `cargo test` with a real kube-apiserver + etcd + kube-controller-manager running for
# tests/operator_cluster.rs. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the tests use; each installer is a no-op when the tool is already there.
for installer in scripts/install/*.sh; do
  [ -e "$installer" ] || continue
  bash "$installer"
done
export PATH="$PWD/.tools/bin:$PATH"

# fmt and clippy are rustup components a machine may lack: say so loudly and go on with the tests.
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --check
else
  echo "test.sh: WARNING: rustfmt is MISSING on this machine: formatting NOT checked (rustup component add rustfmt)" >&2
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --all-targets --locked -- -D warnings
else
  echo "test.sh: WARNING: clippy is MISSING on this machine: lints NOT checked (rustup component add clippy)" >&2
fi

# A disposable control plane for the real-cluster suite, always stopped and removed on exit.
# Its logs are kept in target/cluster-logs when anything failed.
CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/securescore-cluster.XXXXXX")"
stop_cluster() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -d "$CLUSTER_DIR/logs" ]; then
    rm -rf target/cluster-logs && cp -r "$CLUSTER_DIR/logs" target/cluster-logs &&
      echo "test.sh: control-plane logs kept in target/cluster-logs" >&2
  fi
  bash scripts/cluster.sh down "$CLUSTER_DIR" || true
  rm -rf "$CLUSTER_DIR"
  exit $rc
}
trap stop_cluster EXIT
bash scripts/cluster.sh up "$CLUSTER_DIR"
export SECURESCORE_CLUSTER_DIR="$CLUSTER_DIR"

# Benches are built by clippy above but not run here: they are measurements, not tests.
cargo test --locked --no-fail-fast "$@"
bash scripts/fuzz.sh  # fuzz (issue 11): every target in fuzz/ for FUZZ_SECONDS (30) each
