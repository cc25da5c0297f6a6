#!/usr/bin/env bash
# Makes sure Debian's Prometheus is installed (the tests run it to check that alert rules and
# dashboards query metrics that exist): `prometheus.sh ensure|check`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
say() { printf '[prometheus] %s\n' "$*"; }

ensure() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    say "$(prometheus --version 2>&1 | head -n1)"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    say "WARNING: Prometheus is not installed; the ops tests need it: sudo apt-get install -y prometheus"
    return 0
  fi
  say "installing Debian's prometheus package (once)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null; } \
    || { say "ERROR: apt-get could not install prometheus; install it by hand" >&2; exit 1; }
  # The package may start a system instance on :9090; the tests run their own on a free port.
  say "$(prometheus --version 2>&1 | head -n1)"
}

check() {
  promtool check config "$ROOT/deploy/prometheus/prometheus.yml"
}

case "${1:-}" in
  ensure) ensure ;; check) check ;;
  *) echo "usage: $0 ensure|check" >&2; exit 2 ;;
esac
