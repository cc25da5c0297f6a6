#!/usr/bin/env bash
# Runs Jaeger v2, the tracing backend of development, tests and the demo: `jaeger.sh up|down|status|build|path`.
#
# Built from the Go module proxy, never downloaded as a binary: deploy/jaeger/go.mod pins
# github.com/jaegertracing/jaeger (its cmd/jaeger is Jaeger v2, an OpenTelemetry Collector distribution)
# with every dependency in go.sum, and `build` compiles it with the machine's Go (1.24 or newer) into
# a cache outside the checkout: $TOOLS_CACHE/jaeger/<version>-<hash of go.mod and go.sum>/jaeger, where
# TOOLS_CACHE is MVSJ_TOOLS_CACHE, else $XDG_CACHE_HOME/mvsj, else ~/.cache/mvsj. A fresh clone on the
# same machine (CI's) finds the binary there and builds nothing; a changed pin builds a new one beside it.
# The first build takes 545 CPU-seconds and 2.2 GB of memory (measured: 16 minutes on 2 cores beside a test
# run; half a core was busy elsewhere); Go's module and build caches make a second one
# after a pin change much shorter).
#
# It runs all in one process with traces in memory (deploy/jaeger/config.yaml): OTLP over HTTP on
# 127.0.0.1:JAEGER_OTLP_PORT (4318; the services' OTEL_EXPORTER_OTLP_ENDPOINT), the query API (and the
# UI's place: a build from the module proxy carries a placeholder page, not the UI) on JAEGER_QUERY_PORT
# (16686: /api/traces/<trace id>, /api/traces?service=intake&tags=...), its health on JAEGER_HEALTH_PORT
# (13133). Data, log, pid: $CACHE/jaeger. Ready means the query API answers. Idempotent: `up` reuses a
# Jaeger that answers; `down` stops the one `up` started, by pid.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CACHE_DIR:-$ROOT/.cache}
HOME_DIR=$CACHE/jaeger
LOGS=$HOME_DIR/logs
PIDFILE=$HOME_DIR/jaeger.pid
MODULE=$ROOT/deploy/jaeger
CONFIG=$MODULE/config.yaml
VERSION=$(sed -nE 's#^[[:space:]]*github.com/jaegertracing/jaeger (v[0-9.]+).*#\1#p' "$MODULE/go.mod" | head -n1)
PIN=$(cat "$MODULE/go.mod" "$MODULE/go.sum" | sha256sum | cut -c1-12)
TOOLS_CACHE=${MVSJ_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mvsj}
BIN_DIR=$TOOLS_CACHE/jaeger/$VERSION-$PIN
BIN=$BIN_DIR/jaeger
export JAEGER_OTLP_PORT=${JAEGER_OTLP_PORT:-4318}
export JAEGER_QUERY_PORT=${JAEGER_QUERY_PORT:-16686}
export JAEGER_QUERY_GRPC_PORT=${JAEGER_QUERY_GRPC_PORT:-16685}
export JAEGER_HEALTH_PORT=${JAEGER_HEALTH_PORT:-13133}
QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT
WAIT=${JAEGER_WAIT:-60}

say() { printf '[jaeger] %s\n' "$*"; }
die() { printf '[jaeger] ERROR: %s\n' "$*" >&2; exit 1; }

alive() { # prints the pid of the Jaeger `up` started while it runs (a killed one not yet reaped does not count)
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || return 1
  echo "$pid"
}
answers() { # the query API lists services (a JSON object with "data")
  if command -v curl >/dev/null; then
    curl -fsS --max-time 3 "$QUERY_URL/api/services" 2>/dev/null | grep -q '"data"'
  else
    "${PYTHON:-python3}" -c 'import json, sys, urllib.request
sys.exit("data" not in json.load(urllib.request.urlopen(sys.argv[1], timeout=3)))' "$QUERY_URL/api/services" 2>/dev/null
  fi
}
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

build() {
  if [ -x "$BIN" ]; then return 0; fi
  command -v go >/dev/null || die "Go is missing: Jaeger is built from the Go module proxy with Go 1.24 or newer ('apt-get install -y golang' where Debian's is new enough, or the machine's own), then run 'make up' again."
  say "building Jaeger $VERSION (cmd/jaeger, pinned in deploy/jaeger/go.sum) from the Go module proxy into $BIN_DIR"
  say "  once per machine and pin: 5 to 15 minutes on 2 cores; later checkouts reuse the binary"
  mkdir -p "$BIN_DIR" "$LOGS"
  local t0 pid next=30 elapsed
  t0=$(date +%s)
  # GOTOOLCHAIN=local: the machine's Go builds it (go.mod asks for 1.24); -trimpath and -s -w: a smaller,
  # reproducible binary with no paths of this machine in it.
  (cd "$MODULE" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -buildvcs=false -trimpath -ldflags "-s -w" \
     -o "$BIN.partial" github.com/jaegertracing/jaeger/cmd/jaeger) > "$LOGS/build.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    elapsed=$(( $(date +%s) - t0 ))
    if [ "$elapsed" -ge "$next" ]; then say "  still building ($elapsed s)"; next=$((next + 30)); fi
  done
  wait "$pid" || die "the build failed; last lines of $LOGS/build.log:
$(tail -n 25 "$LOGS/build.log")"
  mv "$BIN.partial" "$BIN"
  say "built in $(( $(date +%s) - t0 )) s: $BIN ($(du -m "$BIN" | cut -f1) MB)"
}

start() {
  for port in "$JAEGER_OTLP_PORT" "$JAEGER_QUERY_PORT" "$JAEGER_HEALTH_PORT"; do
    ! port_taken "$port" || die "port $port is taken by something that is not this Jaeger (no query API at $QUERY_URL): stop it, or move Jaeger with JAEGER_OTLP_PORT, JAEGER_QUERY_PORT, JAEGER_HEALTH_PORT"
  done
  mkdir -p "$LOGS"
  say "starting Jaeger $VERSION (traces in memory) with OTLP/HTTP on 127.0.0.1:$JAEGER_OTLP_PORT, query API on $QUERY_URL (log: $LOGS/jaeger.log)"
  # setsid: Jaeger outlives the make process that started it; `8>&- 9>&-`: it holds none of the locks.
  setsid nohup "$BIN" --config "$CONFIG" > "$LOGS/jaeger.log" 2>&1 < /dev/null 8>&- 9>&- &
  echo $! > "$PIDFILE"
}

wait_ready() {
  local pid=$1 t0
  t0=$(date +%s)
  until answers; do
    kill -0 "$pid" 2>/dev/null || die "Jaeger exited while starting; last lines of $LOGS/jaeger.log:
$(tail -n 25 "$LOGS/jaeger.log" 2>/dev/null)"
    [ $(( $(date +%s) - t0 )) -lt "$WAIT" ] || die "Jaeger did not answer within $WAIT s (JAEGER_WAIT); last lines of $LOGS/jaeger.log:
$(tail -n 25 "$LOGS/jaeger.log" 2>/dev/null)"
    sleep 0.3
  done
  say "ready after $(( $(date +%s) - t0 )) s: traces to OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$JAEGER_OTLP_PORT, found at $QUERY_URL/api/traces/<trace id>"
}

up() {
  local pid
  if answers; then say "Jaeger already answers at $QUERY_URL; reusing it"; return 0; fi
  build
  if pid=$(alive); then
    say "Jaeger process $pid is running but its query API does not answer yet; waiting for it"
  else
    start
    pid=$(cat "$PIDFILE")
  fi
  wait_ready "$pid"
}

down() {
  local pid
  if pid=$(alive); then
    say "stopping Jaeger (pid $pid; its traces were in memory and go with it)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { say "Jaeger did not stop in 10 s; killing it"; kill -9 "$pid" 2>/dev/null || true; }
    rm -f "$PIDFILE"
    say "stopped"
  else
    rm -f "$PIDFILE"
    say "no Jaeger started by 'make up' is running"
  fi
}

status() {
  local pid
  if pid=$(alive); then
    say "process $pid (started by make up), resident memory $(( $(ps -o rss= -p "$pid") / 1024 )) MiB"
  else
    say "no process started by make up"
  fi
  if answers; then say "answering: query API $QUERY_URL, OTLP/HTTP http://127.0.0.1:$JAEGER_OTLP_PORT"
  else say "nothing answers at $QUERY_URL"; fi
  if [ -x "$BIN" ]; then say "binary: $BIN"; else say "not built yet (would be $BIN)"; fi
}

lock() { # one `up` or `down` at a time per checkout (a build included): a second waits, then reuses
  mkdir -p "$HOME_DIR"
  exec 9>"$HOME_DIR/.lock"
  command -v flock >/dev/null || return 0
  flock -n 9 || { say "another 'jaeger.sh up' or 'down' of this checkout is running; waiting for it"; flock 9; }
}

build_lock() { # one build per binary, whichever checkout asks (CI's clone and a developer's at once)
  mkdir -p "$BIN_DIR"
  exec 8>"$BIN_DIR/.lock"
  command -v flock >/dev/null || return 0
  flock -n 8 || { say "another checkout is building $BIN; waiting for it"; flock 8; }
}

case "${1:-}" in
  up) lock; [ -x "$BIN" ] || build_lock; up ;;
  down) lock; down ;;
  status) status ;;
  build) build_lock; build; say "Jaeger $VERSION: $BIN" ;;
  path) echo "$BIN" ;;
  *) echo "usage: $0 up|down|status|build|path" >&2; exit 2 ;;
esac
