#!/usr/bin/env bash
# Makes sure PostgreSQL answers at DATABASE_URL: `postgres.sh up|down|status`.
# Uses a server that already answers; otherwise installs Debian's postgresql where missing,
# starts the local cluster, and creates the role and database named in DATABASE_URL.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CACHE_DIR:-$ROOT/.cache}
MARK=$CACHE/postgres.started-by-up
PY=${PYTHON:-$ROOT/.venv/bin/python}
export DATABASE_URL=${DATABASE_URL:-postgresql://politi:politi@localhost:5432/politi}

say() { printf '[postgres] %s\n' "$*"; }
die() { printf '[postgres] ERROR: %s\n' "$*" >&2; exit 1; }

# user, password, host, port, database out of DATABASE_URL
read -r PGU PGPW PGH PGP PGD < <("$PY" - <<'PYEOF'
import os, urllib.parse as u
p = u.urlparse(os.environ["DATABASE_URL"])
print(p.username or "politi", p.password or "", p.hostname or "localhost", p.port or 5432, (p.path or "/politi").lstrip("/") or "politi")
PYEOF
)

cluster() { pg_lsclusters --no-header 2>/dev/null | awk -v port="$PGP" '$3 == port {print $1, $2; exit}'; }

up() {
  if "$PY" "$ROOT/deploy/local/probe.py" postgres --quiet 2>/dev/null; then
    say "$("$PY" "$ROOT/deploy/local/probe.py" postgres) answers at DATABASE_URL; reusing it"
    return 0
  fi
  case "$PGH" in localhost|127.0.0.1|::1) ;; *) die "DATABASE_URL points at $PGH, which does not answer; start that server or unset DATABASE_URL to use a local one." ;; esac
  if ! command -v pg_ctlcluster >/dev/null; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; run 'sudo apt-get install -y postgresql', then 'make up' again."
    say "installing Debian's postgresql package (once)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; } \
      || die "apt-get could not install postgresql; install it by hand and run 'make up' again."
  fi
  local c; c=$(cluster)
  [ -n "$c" ] || die "no PostgreSQL cluster listens on port $PGP (pg_lsclusters shows none); create one with 'pg_createcluster 15 main --port $PGP'."
  set -- $c
  if ! pg_lsclusters --no-header | awk -v v="$1" -v n="$2" '$1==v && $2==n && $4=="online"' | grep -q .; then
    say "starting cluster $1/$2"
    pg_ctlcluster --skip-systemctl-redirect "$1" "$2" start || die "the cluster did not start; see /var/log/postgresql/postgresql-$1-$2.log"
    mkdir -p "$CACHE"; echo "$1 $2" > "$MARK"
  fi
  say "creating role '$PGU' and database '$PGD' where missing"
  runuser -u postgres -- psql -q -p "$PGP" -v ON_ERROR_STOP=1 -v u="$PGU" -v pw="$PGPW" -v d="$PGD" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'u', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'u', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SQL
  "$PY" "$ROOT/deploy/local/probe.py" postgres --wait 30 | sed 's/^/[postgres] ready: /' \
    || die "the database does not accept DATABASE_URL=$DATABASE_URL; see /var/log/postgresql/"
}

down() {
  if [ -f "$MARK" ]; then
    set -- $(cat "$MARK")
    say "stopping cluster $1/$2 (started by make up)"
    pg_ctlcluster --skip-systemctl-redirect "$1" "$2" stop || true
    rm -f "$MARK"
  else
    say "no cluster started by 'make up'; leaving PostgreSQL as it is"
  fi
}

status() {
  "$PY" "$ROOT/deploy/local/probe.py" postgres | sed 's/^/[postgres] answering: /' || say "nothing answers at DATABASE_URL"
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
