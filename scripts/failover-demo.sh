#!/usr/bin/env bash
# `make failover-demo`: the Elixir demo's "kill the leader" on Kubernetes. Sends /work through
# a port-forward to a follower pod every 200 ms and prints who answered, while it deletes the
# leader pod (a graceful stop: SIGTERM after the preStop sleep). The follower keeps answering;
# the performing member changes once, and tickets keep increasing.
#
# The port-forward goes to a follower, not to the Service: kubectl port-forward pins one pod,
# and it would die with the leader. Needs kubectl and curl, and a pool from make kind-up.
set -euo pipefail
# shellcheck source=lib/cluster.sh source-path=SCRIPTDIR
source "$(dirname "$0")/lib/cluster.sh"
LOCAL_PORT="${LOCAL_PORT:-18080}"
SECONDS_BEFORE="${SECONDS_BEFORE:-3}"
SECONDS_AFTER="${SECONDS_AFTER:-12}"

need kubectl "install kubectl"
need curl "install curl"

# GET a path on a member, from inside its own container (the image has node, no curl).
member_get() {
  kubectl -n "$NAMESPACE" exec "$1" -c service-pool-leader -- node -e \
    "fetch('http://127.0.0.1:' + process.env.PORT + '$2').then((r) => r.text()).then((t) => console.log(t))"
}

# The "id" of the first object named $2 in the JSON $1 (enough for /pool and /work answers).
json_field() {
  sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" <<<"$1"
}

# A read loop, not mapfile: macOS's bash 3.2 has no mapfile.
pods=()
while IFS= read -r pod; do
  if [ -n "$pod" ]; then pods+=("$pod"); fi
done < <(kubectl -n "$NAMESPACE" get pods -l "$MEMBERS" \
  --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
if [ "${#pods[@]}" -lt 2 ]; then
  echo "need at least 2 running members in namespace $NAMESPACE (make kind-up), found ${#pods[@]}" >&2
  exit 1
fi

pool="$(member_get "${pods[0]}" /pool)"
leader="$(sed -n 's/.*"leader":{"id":"\([^"]*\)".*/\1/p' <<<"$pool")"
if [ -z "$leader" ]; then
  echo "the pool has no leader right now: $pool" >&2
  exit 1
fi
follower=""
for pod in ${pods[@]+"${pods[@]}"}; do
  if [ "$pod" != "$leader" ]; then
    follower="$pod"
    break
  fi
done
echo "leader: $leader; asking follower $follower through a port-forward on 127.0.0.1:$LOCAL_PORT"

kubectl -n "$NAMESPACE" port-forward "pod/$follower" "$LOCAL_PORT:8080" >/dev/null &
forward=$!
trap 'kill "$forward" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -s -o /dev/null "http://127.0.0.1:$LOCAL_PORT/healthz" && break
  sleep 0.1
done

deleted=false
started=$(date +%s)
ok=0
failed=0
i=0
while :; do
  now=$(date +%s)
  elapsed=$((now - started))
  if [ "$elapsed" -ge $((SECONDS_BEFORE + SECONDS_AFTER)) ]; then
    break
  fi
  if ! $deleted && [ "$elapsed" -ge "$SECONDS_BEFORE" ]; then
    echo "$(date +%T.%3N)  deleting the leader pod $leader"
    kubectl -n "$NAMESPACE" delete pod "$leader" --wait=false >/dev/null
    deleted=true
  fi
  i=$((i + 1))
  answer="$(curl -s -m 3 -w ' %{http_code}' "http://127.0.0.1:$LOCAL_PORT/work?payload=demo-$i" || true)"
  status="${answer##* }"
  body="${answer% *}"
  if [ "$status" = 200 ]; then
    ok=$((ok + 1))
    echo "$(date +%T.%3N)  ticket $(json_field "$body" ticket) by $(json_field "$body" performedBy) (term $(json_field "$body" term))"
  else
    failed=$((failed + 1))
    echo "$(date +%T.%3N)  HTTP ${status:-none}: $body"
  fi
  sleep 0.2
done

echo "$ok answered, $failed failed"
echo "now: $(member_get "$follower" /pool | sed -n 's/.*"leader":{"id":"\([^"]*\)".*/leader \1/p')"
kubectl -n "$NAMESPACE" get pods -l "$MEMBERS"
