#!/usr/bin/env bash
# Installs kubernetes-validate (PyPI) into a venv under $REPO/.tools and links it into
# .tools/bin, idempotently. It validates manifests against the Kubernetes OpenAPI schemas it
# ships, so it works offline; tests/chart.rs runs it over the rendered chart.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
VERSION="1.34.1"
VENV="$REPO/.tools/venv/kubernetes-validate"
BIN="$REPO/.tools/bin"

if [ -x "$BIN/kubernetes-validate" ] && "$BIN/kubernetes-validate" --version 2>/dev/null | grep -q "$VERSION"; then
  exit 0
fi
PYTHON="$(command -v python3 || true)"
if [ -z "$PYTHON" ]; then
  echo "kubernetes-validate.sh: python3 is required" >&2
  exit 1
fi
mkdir -p "$BIN" "$(dirname "$VENV")"
if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
  # Debian's python3 ships venv separately.
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
  else
    echo "kubernetes-validate.sh: python3 -m venv failed" >&2
    exit 1
  fi
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$VERSION"
ln -sf "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"
"$BIN/kubernetes-validate" --version
