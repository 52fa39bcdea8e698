#!/usr/bin/env bash
# Installs cargo-fuzz (from crates.io) into $REPO/.tools/bin, idempotently. scripts/fuzz.sh uses
# it with the nightly toolchain (libFuzzer's coverage instrumentation needs nightly flags).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
VERSION="0.13.2"
BIN="$REPO/.tools/bin"
# Installed once per machine outside the clone (a CI run starts from a fresh clone), linked here.
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/securescore/cargo-fuzz-$VERSION"

link() {
  mkdir -p "$BIN"
  ln -sf "$ROOT/bin/cargo-fuzz" "$BIN/cargo-fuzz"
}
if [ -x "$ROOT/bin/cargo-fuzz" ] && "$ROOT/bin/cargo-fuzz" --version 2>/dev/null | grep -q " $VERSION\$"; then
  link
  exit 0
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
cargo install cargo-fuzz --version "$VERSION" --locked --root "$ROOT"
link
"$BIN/cargo-fuzz" --version
