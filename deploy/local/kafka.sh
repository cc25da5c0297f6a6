#!/usr/bin/env bash
# Runs a single-node Apache Kafka 4 (KRaft) from the official Maven Central jars: `kafka.sh up|down|status`.
# Idempotent: `up` reuses a broker that already answers; `down` stops only the broker that `up` started (by pid).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CACHE_DIR:-$ROOT/.cache}
HOME_DIR=$CACHE/kafka
LIBS=$HOME_DIR/libs
DATA=$HOME_DIR/data
LOGS=$HOME_DIR/logs
PIDFILE=$HOME_DIR/kafka.pid
PROPS=$HOME_DIR/server.properties
PY=${PYTHON:-$ROOT/.venv/bin/python}
KAFKA_PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-localhost:$KAFKA_PORT}

say() { printf '[kafka] %s\n' "$*"; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

fetch_jars() {
  if [ -f "$LIBS/.complete" ] && cmp -s "$ROOT/deploy/kafka/pom.xml" "$LIBS/.complete"; then return 0; fi
  command -v mvn >/dev/null || die "Maven (mvn) is missing: install it with 'apt-get install -y maven', then run 'make up' again."
  say "fetching Apache Kafka jars from Maven Central into $LIBS (once; about a minute) ..."
  rm -rf "$LIBS"
  mvn -B -ntp -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS" \
    | grep -E 'BUILD|ERROR|Downloaded from' | sed 's/^/[kafka]   /' || true
  ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "the Maven fetch did not produce kafka_2.13; see the output above (is Maven Central reachable?)."
  cp "$ROOT/deploy/kafka/pom.xml" "$LIBS/.complete"
}

up() {
  command -v java >/dev/null || die "Java is missing: install a JDK 17+ (e.g. 'apt-get install -y openjdk-17-jre-headless'), then run 'make up' again."
  if "$PY" "$ROOT/deploy/local/probe.py" kafka --quiet 2>/dev/null; then
    say "a broker already answers at $KAFKA_BOOTSTRAP_SERVERS; reusing it"
    return 0
  fi
  if pid=$(running_pid); then
    say "broker process $pid is running but not answering yet; waiting for it"
  else
    fetch_jars
    mkdir -p "$DATA" "$LOGS"
    sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$DATA#g" \
        "$ROOT/deploy/kafka/server.properties.in" > "$PROPS"
    local cp="$LIBS/*"
    if [ ! -f "$DATA/meta.properties" ]; then
      say "formatting storage in $DATA (once)"
      local cluster_id; cluster_id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
      java -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
        -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" --standalone --ignore-formatted \
        | sed 's/^/[kafka]   /'
    fi
    say "starting Apache Kafka $(basename "$LIBS"/kafka_2.13-*.jar .jar | sed 's/kafka_2.13-//') (log: $LOGS/server.log)"
    # setsid: the broker must outlive the make process that started it.
    setsid nohup java -Xms256m -Xmx${KAFKA_HEAP:-768m} -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
      -cp "$cp" kafka.Kafka "$PROPS" > "$LOGS/stdout.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
  fi
  say "waiting until an admin client can describe the cluster at $KAFKA_BOOTSTRAP_SERVERS"
  if ! "$PY" "$ROOT/deploy/local/probe.py" kafka --wait "${KAFKA_WAIT:-90}" | sed 's/^/[kafka] ready: /'; then
    die "the broker did not become ready; last lines of $LOGS/server.log:
$(tail -n 20 "$LOGS/server.log" 2>/dev/null; tail -n 5 "$LOGS/stdout.log" 2>/dev/null)"
  fi
  "$PY" "$ROOT/deploy/local/probe.py" kafka --quiet || die "the broker stopped answering right after start; see $LOGS/server.log"
}

down() {
  local pid
  if ! pid=$(running_pid); then
    say "no broker started by 'make up' is running"
    rm -f "$PIDFILE"; return 0
  fi
  say "stopping broker (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then say "broker did not stop in 30 s; killing it"; kill -9 "$pid"; fi
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  if pid=$(running_pid); then say "process $pid (started by make up)"; else say "no process started by make up"; fi
  "$PY" "$ROOT/deploy/local/probe.py" kafka | sed 's/^/[kafka] answering: /' || say "nothing answers at $KAFKA_BOOTSTRAP_SERVERS"
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
