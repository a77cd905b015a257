#!/usr/bin/env bash
# `make kind-up` (cluster-up.sh kind) and `make minikube-up` (cluster-up.sh minikube): a local
# cluster with the pool on it. Starts the cluster unless it runs, builds the image, loads it
# into the cluster's node (no registry), and deploys the chart — or k8s/overlays/kind with
# DEPLOY=kustomize. Needs Docker, kind or minikube, and kubectl; helm comes from PATH or from
# `make tools`. Extra chart values: HELM_ARGS="--set replicaCount=5".
set -euo pipefail
# shellcheck source=lib/cluster.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib/cluster.sh"
read -r -a HELM_ARGS <<<"${HELM_ARGS:-}"
flavour="${1:-}"
if [ "$flavour" != kind ] && [ "$flavour" != minikube ]; then
  echo "usage: $0 kind|minikube" >&2
  exit 2
fi

need docker "install Docker (the image is built locally)"
need kubectl "install kubectl"
case "$flavour" in
  kind)
    CLUSTER="${CLUSTER:-service-pool-leader}"
    need kind "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
      echo "kind cluster $CLUSTER exists"
    else
      kind create cluster --name "$CLUSTER" --wait 2m
    fi
    kubectl config use-context "kind-$CLUSTER"
    CONTAINER_ENGINE=docker "$root/scripts/build-image.sh" "$IMAGE"
    kind load docker-image "$IMAGE" --name "$CLUSTER"
    ;;
  minikube)
    PROFILE="${PROFILE:-minikube}"
    need minikube "install minikube: https://minikube.sigs.k8s.io/docs/start/"
    if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
      echo "minikube profile $PROFILE is running"
    else
      minikube start --profile "$PROFILE"
    fi
    kubectl config use-context "$PROFILE"
    CONTAINER_ENGINE=docker "$root/scripts/build-image.sh" "$IMAGE"
    minikube image load "$IMAGE" --profile "$PROFILE"
    ;;
esac
deploy_pool
