#!/usr/bin/env bash
# The whole test suite. Installs, idempotently, whatever the tests need on a fresh machine,
# then runs fmt, clippy and `cargo test`. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the tests use; each installer is a no-op when the tool is already there.
for installer in scripts/install/*.sh; do
  [ -e "$installer" ] || continue
  bash "$installer"
done
export PATH="$PWD/.tools/bin:$PATH"

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# Benches are built by clippy above but not run here: they are measurements, not tests.
cargo test --locked --no-fail-fast "$@"
bash scripts/fuzz.sh  # fuzz (issue 11): every target in fuzz/ for FUZZ_SECONDS (30) each
