#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need when they are missing: `packages.sh ensure|list`.
# chromium (the console's browser test), poppler-utils (pdftotext reads the council report PDFs),
# Pango and DejaVu fonts (WeasyPrint renders the PDFs), prometheus (alert rules, the demo's scraper),
# prometheus-alertmanager (the demo routes alerts to people; amtool checks its config in the tests).
set -euo pipefail
say() { printf '[packages] %s\n' "$*"; }
PACKAGES=(chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core prometheus prometheus-alertmanager)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing() {
  local p
  for p in "${PACKAGES[@]}"; do installed "$p" || printf '%s\n' "$p"; done
}

ensure() {
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian system: install by hand the equivalents of: ${PACKAGES[*]}"
    return 0
  fi
  mapfile -t todo < <(missing)
  if [ "${#todo[@]}" = 0 ]; then
    say "all present: ${PACKAGES[*]}"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo); else
      say "WARNING: missing ${todo[*]}; the tests that need them fail. Install: sudo apt-get install -y ${todo[*]}"
      return 0
    fi
  fi
  # apt-get prints hundreds of lines; one line per step says where it is.
  local i=0
  for p in "${todo[@]}"; do
    i=$((i + 1))
    say "installing $p ($i of ${#todo[@]}) ..."
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "$p" >/dev/null 2>&1 || {
      say "  package lists may be stale: apt-get update ..."
      "${sudo[@]}" apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "$p" >/dev/null; } \
      || { say "ERROR: apt-get could not install $p; install it by hand" >&2; exit 1; }
    say "  $p installed"
    if [ "$p" = prometheus-alertmanager ] && [ -d /run/systemd/system ]; then
      # The package starts a system Alertmanager on 9093 and 9094; the demo and the tests run their own.
      "${sudo[@]}" systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 &&
        say "  stopped and disabled the system's prometheus-alertmanager service (the demo runs its own on 9093)"
    fi
  done
}

case "${1:-}" in
  ensure) ensure ;;
  list) missing ;;
  *) echo "usage: $0 ensure|list" >&2; exit 2 ;;
esac
