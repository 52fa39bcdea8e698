#!/usr/bin/env bash
# Installs prometheus and promtool (Debian's `prometheus` package), idempotently, and links them
# into $REPO/.tools/bin so the tests find them on the PATH scripts/test.sh sets.
# Runs as root (no sudo). The Debian package also ships a systemd unit; nothing here starts it
# (there is no init in a build container, and the tests start their own server on loopback).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
BIN="$REPO/.tools/bin"

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "prometheus.sh: apt-get is required to install prometheus and promtool" >&2
    exit 1
  fi
  # The package's postinst only starts its service under a running init (none in a build
  # container); the tests start their own server on loopback.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
mkdir -p "$BIN"
for tool in prometheus promtool; do
  path="$(command -v "$tool")"
  if [ "$path" != "$BIN/$tool" ]; then
    ln -sf "$path" "$BIN/$tool"
  fi
done
"$BIN/promtool" --version >/dev/null 2>&1
echo "prometheus: $("$BIN/prometheus" --version 2>&1 | head -n1)"
