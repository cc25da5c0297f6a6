#!/usr/bin/env bash
# Runs Keycloak, the district's OpenID Connect provider for development and tests: `keycloak.sh up|down|status`
# (`fetch`: only fetch and unpack it; `java`: print the JDK 21+ it would run on, or fail saying what to install).
#
# The server distribution comes from Maven Central (org.keycloak:keycloak-quarkus-dist, version pinned
# below), fetched once with `mvn dependency:copy` into $CACHE/keycloak/dist and unpacked beside it. It
# runs in `start-dev` mode (embedded H2 database under its data/, plain HTTP) on 127.0.0.1:KEYCLOAK_PORT
# (8180: services use 8001-8004, their ops ports 9001-9004, Kafka 9092/9098 and +100 per node,
# Prometheus 9090, Alertmanager 9093) and imports the committed realm deploy/keycloak/realm-mvsj.json
# (`--import-realm` from data/import). Keycloak 26 needs Java 21 or newer: KEYCLOAK_JAVA_HOME, else
# the machine's Temurin 25, else any JDK 21+ under /usr/lib/jvm (Kafka and Maven keep Java 17).
# The admin console's bootstrap user is development-only: admin / dev-admin (KEYCLOAK_ADMIN_PASSWORD).
#
# Ready means the realm's discovery document answers with its issuer (OIDC_ISSUER_URL, default
# http://127.0.0.1:8180/realms/mvsj). Idempotent: `up` reuses a Keycloak that already answers; when the
# committed realm changed since the last import, a Keycloak that `up` started is restarted on a fresh
# development database so the new realm is imported (users made by hand in the console go with it).
# `down` stops it by pid (its process group: kc.sh and its JVM). Logs: $CACHE/keycloak/logs/keycloak.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CACHE_DIR:-$ROOT/.cache}
VERSION=26.5.6
HOME_DIR=$CACHE/keycloak
DIST=$HOME_DIR/dist
ZIP=$DIST/keycloak-quarkus-dist-$VERSION.zip
KC_HOME=$HOME_DIR/keycloak-$VERSION
LOGS=$HOME_DIR/logs
PIDFILE=$HOME_DIR/keycloak.pid
REALM_FILE=$ROOT/deploy/keycloak/realm-mvsj.json
IMPORTED=$HOME_DIR/realm-imported.json # the realm file the current database was created from
PORT=${KEYCLOAK_PORT:-8180}
# Keycloak's management interface (health, metrics) opens only when one of them is enabled, which
# start-dev does not; its port is moved off Keycloak's default 9000 all the same, to 9180.
MANAGEMENT_PORT=${KEYCLOAK_MANAGEMENT_PORT:-$((PORT + 1000))}
BASE_URL=http://127.0.0.1:$PORT
LOCAL_ISSUER=$BASE_URL/realms/mvsj
ISSUER=${OIDC_ISSUER_URL:-$LOCAL_ISSUER}
PORTFILE=$HOME_DIR/keycloak.port # the port the running Keycloak was started on
DISCOVERY=$ISSUER/.well-known/openid-configuration
WAIT=${KEYCLOAK_WAIT:-180}
# Keycloak's own default outside a container is -Xms64m -Xmx512m; said here so it is one edit.
HEAP=${KEYCLOAK_HEAP:--Xms64m -Xmx512m}

say() { printf '[keycloak] %s\n' "$*"; }
die() { printf '[keycloak] ERROR: %s\n' "$*" >&2; exit 1; }

alive() { # prints the pid of the process `up` started while it runs (a killed one not yet reaped does not count)
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || return 1
  echo "$pid"
}
answers() { # the realm's discovery document answers, naming the issuer we expect
  if command -v curl >/dev/null; then
    curl -fsS --max-time 3 "$DISCOVERY" 2>/dev/null | grep -q "\"issuer\":\"$ISSUER\""
  else
    "${PYTHON:-python3}" -c 'import json, sys, urllib.request
sys.exit(json.load(urllib.request.urlopen(sys.argv[1], timeout=3)).get("issuer") != sys.argv[2])' \
      "$DISCOVERY" "$ISSUER" 2>/dev/null
  fi
}
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_major() { # JAVA_HOME -> its major version (17, 21, 25), or nothing
  [ -x "$1/bin/java" ] || return 1
  "$1/bin/java" -version 2>&1 | sed -nE '1s/.*version "(1\.)?([0-9]+).*/\2/p'
}
find_java() {
  local candidate major
  for candidate in "${KEYCLOAK_JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [ -n "$candidate" ] || continue
    major=$(java_major "$candidate" 2>/dev/null) || continue
    if [ -n "$major" ] && [ "$major" -ge 21 ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

fetch() {
  if [ ! -f "$ZIP" ]; then
    command -v mvn >/dev/null || die "Maven (mvn) is missing: install it with 'apt-get install -y maven', then run 'make up' again."
    say "fetching Keycloak $VERSION (org.keycloak:keycloak-quarkus-dist, 165 MB) from Maven Central into $DIST (once) ..."
    mvn -B -ntp -Dstyle.color=never dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" -DoutputDirectory="$DIST" \
      | grep -E 'BUILD|ERROR' | sed 's/^/[keycloak]   /' || true
    [ -f "$ZIP" ] || die "the Maven fetch did not produce $ZIP; see the output above (is Maven Central reachable?)."
  fi
  if [ ! -f "$KC_HOME/.unpacked" ]; then
    say "unpacking $(basename "$ZIP") into $KC_HOME"
    rm -rf "$KC_HOME" "$HOME_DIR/unpack"
    mkdir -p "$HOME_DIR/unpack"
    if command -v unzip >/dev/null; then unzip -q "$ZIP" -d "$HOME_DIR/unpack"
    else "${PYTHON:-python3}" -m zipfile -e "$ZIP" "$HOME_DIR/unpack" && chmod +x "$HOME_DIR/unpack/keycloak-$VERSION"/bin/*.sh; fi
    mv "$HOME_DIR/unpack/keycloak-$VERSION" "$KC_HOME"
    rmdir "$HOME_DIR/unpack"
    touch "$KC_HOME/.unpacked"
  fi
}

stop() { # SIGTERM to kc.sh's process group (kc.sh and its JVM), up to 30 s, then SIGKILL
  local pid=$1
  say "stopping Keycloak (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "Keycloak did not stop in 30 s; killing it"
    kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE" "$PORTFILE"
}

need_java() {
  find_java || die "Keycloak $VERSION needs Java 21 or newer and none was found (looked at KEYCLOAK_JAVA_HOME, /usr/lib/jvm/temurin-25-jdk-amd64, JAVA_HOME, /usr/lib/jvm/*). Install one: Temurin 25 from Adoptium's apt repository ('apt-get install -y temurin-25-jdk'), or 'apt-get install -y openjdk-21-jre-headless' where Debian has it (Debian 13); or set KEYCLOAK_JAVA_HOME to a JDK 21+. Then run 'make up' again."
}

start() {
  local java_home; java_home=$(need_java)
  ! port_taken "$PORT" || die "port $PORT is taken by something that is not this Keycloak (no discovery document at $DISCOVERY): stop it, or choose another port with KEYCLOAK_PORT (and OIDC_ISSUER_URL)"
  fetch
  mkdir -p "$LOGS" "$KC_HOME/data/import"
  if [ -d "$KC_HOME/data/h2" ] && ! cmp -s "$REALM_FILE" "$IMPORTED"; then
    say "the committed realm (deploy/keycloak/realm-mvsj.json) changed since the last import: starting on a fresh development database"
    rm -rf "$KC_HOME/data/h2"
  fi
  cp "$REALM_FILE" "$KC_HOME/data/import/realm-mvsj.json"
  if [ -d "$KC_HOME/data/h2" ]; then EXPECT="about 20 s"
  else EXPECT="about 50-70 s on 2 cores: a new database and the realm's import"; say "the realm mvsj is imported on this start"; fi
  local append=${JAVA_OPTS_APPEND:-}
  # Java 24+ warns at every start that Netty uses sun.misc.Unsafe's memory access (JEP 471): allowed, so the log is quiet.
  [ "$(java_major "$java_home")" -lt 24 ] || append="--sun-misc-unsafe-memory-access=allow $append"
  say "starting Keycloak $VERSION (start-dev, Java $(java_major "$java_home") from $java_home, heap $HEAP) on $BASE_URL (log: $LOGS/keycloak.log)"
  # setsid: Keycloak outlives the make process that started it, and `down` stops kc.sh's whole group.
  JAVA_HOME=$java_home JAVA_OPTS_KC_HEAP=$HEAP JAVA_OPTS_APPEND=$append \
  KC_BOOTSTRAP_ADMIN_USERNAME=${KEYCLOAK_ADMIN:-admin} KC_BOOTSTRAP_ADMIN_PASSWORD=${KEYCLOAK_ADMIN_PASSWORD:-dev-admin} \
    setsid nohup "$KC_HOME/bin/kc.sh" start-dev --http-host=127.0.0.1 --http-port="$PORT" \
      --http-management-port="$MANAGEMENT_PORT" --hostname="$BASE_URL" --import-realm \
      > "$LOGS/keycloak.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$PIDFILE"
  echo "$PORT" > "$PORTFILE"
  cp "$REALM_FILE" "$IMPORTED"
}

phase() { # what the log says Keycloak is doing, in a few words
  local line
  line=$(grep -oE "(Updating the configuration|Initializing database schema|Full importing from file|Realm '[a-z]+' (imported|already exists)|started in [0-9.]+s)" \
    "$LOGS/keycloak.log" 2>/dev/null | tail -n1 || true)
  case "$line" in
    "Updating the configuration") echo "building Keycloak for this configuration (once)" ;;
    "Initializing database schema") echo "creating its development database (H2, once)" ;;
    "Full importing from file") echo "reading the realm mvsj (imported once per database)" ;;
    *imported) echo "realm imported; opening the HTTP port" ;;
    *exists) echo "realm already there; opening the HTTP port" ;;
    started*) echo "started; waiting for the realm" ;;
    *) echo "the JVM is starting" ;;
  esac
}

wait_ready() {
  local pid=$1 t0 elapsed next=10
  t0=$(date +%s)
  say "waiting until $DISCOVERY answers (${EXPECT:-a start takes about 20 s})"
  until answers; do
    elapsed=$(( $(date +%s) - t0 ))
    kill -0 "$pid" 2>/dev/null || die "Keycloak exited while starting; last lines of $LOGS/keycloak.log:
$(tail -n 25 "$LOGS/keycloak.log" 2>/dev/null)"
    [ "$elapsed" -lt "$WAIT" ] || die "Keycloak did not answer within $WAIT s (KEYCLOAK_WAIT); last lines of $LOGS/keycloak.log:
$(tail -n 25 "$LOGS/keycloak.log" 2>/dev/null)"
    if [ "$elapsed" -ge "$next" ]; then
      say "  still starting ($elapsed s): $(phase)"
      next=$((next + 10))
    fi
    sleep 1
  done
  say "ready after $(( $(date +%s) - t0 )) s: issuer $ISSUER ($(grep -oE 'started in [0-9.]+s' "$LOGS/keycloak.log" | tail -n1 || true))"
}

up() {
  local pid
  if [ "$ISSUER" != "$LOCAL_ISSUER" ]; then
    # OIDC_ISSUER_URL names another provider: nothing to start here, only to say whether it answers.
    if answers; then say "OIDC_ISSUER_URL=$ISSUER answers; not starting a local Keycloak"; return 0; fi
    die "OIDC_ISSUER_URL=$ISSUER does not answer ($DISCOVERY), and it is not the local realm ($LOCAL_ISSUER) that 'make up' starts: unset it to use the local one"
  fi
  if pid=$(alive) && [ "$(cat "$PORTFILE" 2>/dev/null)" != "$PORT" ]; then
    die "the Keycloak that 'make up' started (pid $pid) runs on port $(cat "$PORTFILE" 2>/dev/null || echo '?'), not $PORT: stop it first ('bash deploy/local/keycloak.sh down'), then start it on $PORT"
  fi
  if answers; then
    if pid=$(alive) && ! cmp -s "$REALM_FILE" "$IMPORTED"; then
      say "the committed realm changed since Keycloak (pid $pid) imported it: restarting it"
      stop "$pid"
    else
      say "Keycloak already answers at $ISSUER; reusing it"
      return 0
    fi
  fi
  if pid=$(alive); then
    say "Keycloak process $pid is running but the realm does not answer yet; waiting for it"
  else
    start
    pid=$(cat "$PIDFILE")
  fi
  wait_ready "$pid"
  say "admin console: $BASE_URL/admin/ (development only: ${KEYCLOAK_ADMIN:-admin} / dev-admin); sign-in users: README \"Identity provider\""
}

down() {
  local pid
  if pid=$(alive); then
    stop "$pid"
    say "stopped"
  else
    rm -f "$PIDFILE"
    say "no Keycloak started by 'make up' is running"
  fi
}

status() {
  local pid
  if pid=$(alive); then
    local rss; rss=$(ps -o rss= -g "$pid" 2>/dev/null | awk '{s += $1} END {printf "%d", s / 1024}')
    say "process $pid (started by make up), resident memory ${rss} MiB"
  else
    say "no process started by make up"
  fi
  if answers; then say "answering: issuer $ISSUER (admin console $BASE_URL/admin/)"
  else say "nothing answers at $DISCOVERY"; fi
}

lock() { # one `up` or `down` at a time per checkout: a second `make up` waits, then finds Keycloak answering
  # (fd 9 holds the lock; the Keycloak it starts does not inherit it: `9>&-` in start)
  mkdir -p "$HOME_DIR"
  exec 9>"$HOME_DIR/.lock"
  command -v flock >/dev/null || return 0
  flock -n 9 || { say "another 'keycloak.sh up' or 'down' of this checkout is running; waiting for it"; flock 9; }
}

case "${1:-}" in
  up) lock; up ;;
  down) lock; down ;;
  status) status ;;
  fetch) fetch; say "Keycloak $VERSION in $KC_HOME" ;;
  java) need_java ;;
  *) echo "usage: $0 up|down|status|fetch|java" >&2; exit 2 ;;
esac
