#!/usr/bin/env bash
# Installs cargo-fuzz (from crates.io) into $REPO/.tools/bin, idempotently. scripts/fuzz.sh uses
# it with the nightly toolchain (libFuzzer's coverage instrumentation needs nightly flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
VERSION="0.13.2"
BIN="$REPO/.tools/bin"

if [ -x "$BIN/cargo-fuzz" ] && "$BIN/cargo-fuzz" --version 2>/dev/null | grep -q " $VERSION\$"; then
  exit 0
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
cargo install cargo-fuzz --version "$VERSION" --locked --root "$REPO/.tools"
"$BIN/cargo-fuzz" --version
