#!/usr/bin/env bash
# checkov, for the cross-check in tests/checkov/compare.py (a report, not part of `cargo test`).
# Idempotent: a venv under .tools/checkov-venv with a pinned checkov, linked into .tools/bin.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="3.3.30"
VENV=".tools/checkov-venv"
mkdir -p .tools/bin
if [ -x "$VENV/bin/checkov" ] && "$VENV/bin/pip" show checkov 2>/dev/null | grep -qx "Version: $VERSION"; then
  ln -sf "../checkov-venv/bin/checkov" .tools/bin/checkov
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$VERSION"
ln -sf "../checkov-venv/bin/checkov" .tools/bin/checkov
