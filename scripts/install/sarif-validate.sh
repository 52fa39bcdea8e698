#!/usr/bin/env bash
# `sarif-validate FILE...`: validates SARIF logs against the official SARIF 2.1.0 JSON schema
# (sarif-2.1.0-rtm.5.json, as shipped by Microsoft in the npm package @microsoft/jest-sarif)
# with PyPI's jsonschema. Used by tests/scan.rs. Idempotent; everything goes under .tools/.
set -euo pipefail
cd "$(dirname "$0")/../.."
JSONSCHEMA_VERSION="4.23.0"
SCHEMA_PACKAGE="@microsoft/jest-sarif@1.0.0-beta.0"
SCHEMA=".tools/sarif/sarif-2.1.0-rtm.5.json"
VENV=".tools/sarif-venv"
mkdir -p .tools/bin .tools/sarif

if [ ! -s "$SCHEMA" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$SCHEMA_PACKAGE" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/schemas/sarif-2.1.0-rtm.5.json
  cp "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$SCHEMA"
fi

if ! "$VENV/bin/python" -c "import jsonschema, sys; sys.exit(jsonschema.__version__ != '$JSONSCHEMA_VERSION')" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "jsonschema==$JSONSCHEMA_VERSION"
fi

cat > .tools/bin/sarif-validate <<'SH'
#!/usr/bin/env bash
# Validate SARIF files against the SARIF 2.1.0 schema; prints every violation, exits 1 on any.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
exec "$here/sarif-venv/bin/python" - "$here/sarif/sarif-2.1.0-rtm.5.json" "$@" <<'PY'
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft4Validator(schema)
bad = 0
for path in sys.argv[2:]:
    log = json.load(open(path))
    for err in sorted(validator.iter_errors(log), key=lambda e: list(e.path)):
        bad += 1
        where = "/".join(str(p) for p in err.path)
        print(f"{path}: /{where}: {err.message}")
sys.exit(1 if bad else 0)
PY
SH
chmod +x .tools/bin/sarif-validate
