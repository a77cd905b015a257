#!/usr/bin/env bash
# `make grafana`: Prometheus and Grafana for the pool, from the kube-prometheus-stack chart.
# Prints the steps; with INSTALL=1 runs them. The pool's release then gets a ServiceMonitor
# (labelled release=kube-prometheus-stack, which that Prometheus selects), its alert rules,
# and its dashboard ConfigMap (grafana_dashboard: "1", which Grafana's sidecar loads), and its
# NetworkPolicy lets that Prometheus scrape the members and the bundled etcd.
set -euo pipefail
# shellcheck source=lib/cluster.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib/cluster.sh"
MONITORING="${MONITORING:-monitoring}"
STACK=kube-prometheus-stack

if [ "${INSTALL:-0}" = 1 ]; then
  need kubectl "install kubectl"
  helm="$(helm_binary)"
  echo "installing $STACK into namespace $MONITORING:"
else
  # Printed to be pasted: the helm on PATH, else the one `make tools` extracts.
  if command -v helm >/dev/null 2>&1; then
    helm=helm
  else
    helm="$root/.tools/helm4/helm"
    echo "(no helm on PATH: these use helm 4 from \`make tools\`, $helm)"
  fi
  echo "Prometheus and Grafana for the pool (INSTALL=1 make grafana runs these):"
fi

step() {
  printf ' '
  printf ' %q' "$@"
  printf '\n'
  if [ "${INSTALL:-0}" = 1 ]; then
    "$@"
  fi
}

# The NetworkPolicy admits this Prometheus (prometheus-operator's pods in $MONITORING).
prometheus="[{\"namespaceSelector\":{\"matchLabels\":{\"kubernetes.io/metadata.name\":\"$MONITORING\"}},\"podSelector\":{\"matchLabels\":{\"app.kubernetes.io/name\":\"prometheus\"}}}]"
step "$helm" repo add prometheus-community https://prometheus-community.github.io/helm-charts
step "$helm" repo update prometheus-community
step "$helm" upgrade --install "$STACK" prometheus-community/kube-prometheus-stack \
  --namespace "$MONITORING" --create-namespace \
  --set grafana.sidecar.dashboards.searchNamespace=ALL --wait --timeout 10m
step "$helm" upgrade "$RELEASE" "$root/helm/service-pool-leader" --namespace "$NAMESPACE" \
  --reuse-values \
  --set metrics.serviceMonitor.enabled=true --set "metrics.serviceMonitor.labels.release=$STACK" \
  --set metrics.prometheusRule.enabled=true --set "metrics.prometheusRule.labels.release=$STACK" \
  --set grafana.dashboard.enabled=true --set-json "networkPolicy.prometheus=$prometheus"

cat <<EOT

Then open Grafana and its dashboard "service-pool-leader" (user admin):
  kubectl -n $MONITORING get secret $STACK-grafana -o jsonpath='{.data.admin-password}' | base64 -d; echo
  kubectl -n $MONITORING port-forward service/$STACK-grafana 3000:80   # http://127.0.0.1:3000/
make failover-demo shows up there as a leader change and a failover duration.
EOT
