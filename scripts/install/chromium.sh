#!/usr/bin/env bash
# Debian's `chromium`, for the headless rendering test of `securescore scan --format html`
# (tests/html.rs). Idempotent: a no-op when a working chromium is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && chromium --headless --version >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: install Chromium (a \`chromium\` on PATH) with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
chromium --headless --version >/dev/null
