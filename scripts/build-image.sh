#!/usr/bin/env bash
# `make image`: builds the repository's Dockerfile as TAG (default service-pool-leader:dev),
# also tagged with every further TAG given (make image adds the chart's appVersion, the tag a
# plain `helm install` uses).
#   scripts/build-image.sh [TAG [TAG...]]
# With Docker where `docker info` reaches an engine, else with podman, through the repository's
# engine settings (test/containers/support/containers.conf: runc, netavark), explicit ulimits
# (the engine's defaults can be refused), the host network, and this machine's CA bundle
# mounted read-only (npm's TLS where a proxy re-signs traffic; stand-in bases point
# NODE_EXTRA_CA_CERTS at it).
#
# NODE_IMAGE=<tag> is the base of both stages instead of the Dockerfile's default (the official
# node image), e.g. a stand-in from `make standin-images`; it must exist locally (podman:
# --pull=never).
# CONTAINER_ENGINE=docker|podman skips the choice (the rehearsal builds with podman;
# scripts/cluster-up.sh with docker, which kind and minikube load from).
#
# Prints the build time and the size of the image's own layers (the image minus its base). The
# last line is for programs: `built TAG seconds=S own_layers_bytes=N`.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-service-pool-leader:dev}"
more_tags=("${@:2}")
node_image="${NODE_IMAGE:-}"
# The base the size is measured against: NODE_IMAGE, else the Dockerfile's default.
base="${node_image:-$(sed -n 's/^ARG NODE_IMAGE=//p' "$root/Dockerfile")}"
engine="${CONTAINER_ENGINE:-}"

if [ -z "$engine" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null 2>&1; then
    engine=podman
  else
    echo "build-image: neither a running Docker engine nor podman: install Docker, or podman" \
      "and runc (scripts/install-system-deps.sh containers)" >&2
    exit 1
  fi
fi

args=(build -t "$tag" -f "$root/Dockerfile")
for extra in ${more_tags[@]+"${more_tags[@]}"}; do
  args+=(-t "$extra")
done
if [ -n "$node_image" ]; then
  args+=(--build-arg "NODE_IMAGE=$node_image")
fi
case "$engine" in
  docker)
    # No provenance attestation: with Docker's containerd image store, `kind load docker-image`
    # fails on one ("ctr: content digest ... not found", kind issue #3795). Builders before
    # buildx 0.10 do not know the flag and add none.
    if docker build --help 2>/dev/null | grep -q -- '--provenance'; then
      args+=(--provenance=false)
    fi
    ;;
  podman)
    export CONTAINERS_CONF="$root/test/containers/support/containers.conf"
    args+=(--network=host --ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
    if [ -n "$node_image" ]; then
      args+=(--pull=never)
    fi
    if [ -d /etc/ssl/certs ]; then
      args+=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
    fi
    ;;
  *)
    echo "build-image: CONTAINER_ENGINE is docker or podman, not $engine" >&2
    exit 2
    ;;
esac

echo "build-image: $engine ${args[*]} $root"
# Whole seconds: bash 3.2 (macOS) has no EPOCHREALTIME.
started="$(date +%s)"
if ! "$engine" "${args[@]}" "$root"; then
  if [ -z "$node_image" ]; then
    echo "build-image: the build failed; where no image registry is reachable, build stand-in" \
      "bases with \`make standin-images\` and pass one: make image NODE_IMAGE=<its node tag>" >&2
  fi
  exit 1
fi
seconds=$(($(date +%s) - started))

# The base may not be among the engine's local images (Docker with BuildKit and the classic
# image store keeps it in the build cache only): then the own layers' size is not known.
size() { "$engine" image inspect --format '{{.Size}}' "$1" 2>/dev/null || echo unknown; }
image_bytes="$(size "$tag")"
base_bytes="$(size "$base")"
if [ "$image_bytes" = unknown ] || [ "$base_bytes" = unknown ]; then
  echo "build-image: $tag built in $seconds s with $engine (the base $base is not among the" \
    "local images: own layers not measured)"
  echo "built $tag seconds=$seconds own_layers_bytes=unknown"
  exit 0
fi
own_bytes=$((image_bytes - base_bytes))
own_mb="$(awk -v b="$own_bytes" 'BEGIN { printf "%.1f", b / 1000000 }')"
echo "build-image: $tag built in $seconds s with $engine; own layers $own_mb MB" \
  "(without the base $base)"
echo "built $tag seconds=$seconds own_layers_bytes=$own_bytes"
