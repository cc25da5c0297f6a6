#!/usr/bin/env bash
# Runs Apache Kafka 4 (KRaft) from the official Maven Central jars: `kafka.sh up|down|status|jars`.
#
# KAFKA_BROKERS=1 (the default): one combined broker+controller node, broker on KAFKA_PORT (9092),
# controller on KAFKA_CONTROLLER_PORT (9098); data, log and pid in $CACHE/kafka.
# KAFKA_BROKERS=3: three combined nodes as production runs them (replication factor 3,
# min.insync.replicas=2, unclean leader election off). Node n listens on KAFKA_PORT + 100*(n-1)
# (9092, 9192, 9292) and its controller on KAFKA_CONTROLLER_PORT + 100*(n-1) (default base 9098:
# 9098, 9198, 9298); data, log and pid in $CACHE/kafka/cluster/node<n>.
# Controllers start at 9098, never Kafka's customary 9093: that is Alertmanager's port (9094 its
# cluster port), which `make demo` runs. The single node and the cluster's first node share 9098 as
# they share 9092: they never run together. A single node formatted when its controller was on 9093
# moves without a re-format: it is the only voter of a dynamic quorum (`format --standalone`), and
# Kafka 4.1's leader rewrites its own endpoint in the voter set when it starts on a new port.
# The cluster's first broker takes the single node's 9092, so `up` with KAFKA_BROKERS=3 refuses while
# the single node that `up` started is running (and the other way round `up` reuses the cluster).
# Idempotent: `up` reuses what already answers and starts only nodes that are not running;
# `down` stops every node that `up` started (single node and cluster), by pid.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${CACHE_DIR:-$ROOT/.cache}
HOME_DIR=$CACHE/kafka
LIBS=${KAFKA_LIBS:-$HOME_DIR/libs}
DATA=$HOME_DIR/data
LOGS=$HOME_DIR/logs
PIDFILE=$HOME_DIR/kafka.pid
PROPS=$HOME_DIR/server.properties
CLUSTER_DIR=$HOME_DIR/cluster
PY=${PYTHON:-$ROOT/.venv/bin/python}
BROKERS=${KAFKA_BROKERS:-1}
STEP=${KAFKA_PORT_STEP:-100}
KAFKA_PORT=${KAFKA_PORT:-9092}
if [ "$BROKERS" = 1 ]; then
  CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9098}
  export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-localhost:$KAFKA_PORT}
else
  CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9098}
  bootstrap=""
  for ((n = 1; n <= BROKERS; n++)); do bootstrap+="${bootstrap:+,}localhost:$((KAFKA_PORT + STEP * (n - 1)))"; done
  export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$bootstrap}
fi

say() { printf '[kafka] %s\n' "$*"; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

alive() { # pidfile -> prints the pid when that process runs (a killed one not yet reaped does not count)
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || return 1
  echo "$pid"
}
running_pid() { alive "$PIDFILE"; }
node_dir() { echo "$CLUSTER_DIR/node$1"; }
node_port() { echo $((KAFKA_PORT + STEP * ($1 - 1))); }
node_controller_port() { echo $((CONTROLLER_PORT + STEP * ($1 - 1))); }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
kafka_version() { basename "$LIBS"/kafka_2.13-*.jar .jar | sed 's/kafka_2.13-//'; }

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

start_java() { # props logs pidfile min-heap max-heap; setsid: the broker must outlive the make process that started it
  setsid nohup java -Xms"$4" -Xmx"$5" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.logs.dir="$2" \
    -cp "$LIBS/*" kafka.Kafka "$1" > "$2/stdout.log" 2>&1 < /dev/null &
  echo $! > "$3"
}

wait_ready() { # brokers logs-hint
  if [ "$1" = 1 ]; then say "waiting until an admin client can describe the cluster at $KAFKA_BOOTSTRAP_SERVERS"
  else say "waiting until an admin client sees $1 brokers at $KAFKA_BOOTSTRAP_SERVERS"; fi
  if ! "$PY" "$ROOT/deploy/local/probe.py" kafka --brokers "$1" --wait "${KAFKA_WAIT:-90}" | sed 's/^/[kafka] ready: /'; then
    die "the broker(s) did not become ready; $2"
  fi
  # Asked again a moment later, with a few seconds' grace: right after a node (re)starts an admin client may
  # reach it before it serves metadata (seen under CI load); a broker that died after starting still fails here.
  sleep 2
  "$PY" "$ROOT/deploy/local/probe.py" kafka --brokers "$1" --quiet --wait 20 2>/dev/null \
    || die "the broker(s) stopped answering right after start; $2"
}

up_single() {
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
    if [ ! -f "$DATA/meta.properties" ]; then
      say "formatting storage in $DATA (once)"
      local cluster_id; cluster_id=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
      java -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
        -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" --standalone --ignore-formatted \
        | sed 's/^/[kafka]   /'
    fi
    say "starting Apache Kafka $(kafka_version) (log: $LOGS/server.log)"
    start_java "$PROPS" "$LOGS" "$PIDFILE" 256m "${KAFKA_HEAP:-768m}"
  fi
  wait_ready 1 "last lines of $LOGS/server.log:
$(tail -n 20 "$LOGS/server.log" 2>/dev/null; tail -n 5 "$LOGS/stdout.log" 2>/dev/null)"
}

up_cluster() {
  [ "$BROKERS" -ge 3 ] 2>/dev/null || die "KAFKA_BROKERS=$BROKERS: use 1 (a single node) or 3 (replication factor 3 needs three brokers)"
  local missing=() n pid
  for ((n = 1; n <= BROKERS; n++)); do
    if pid=$(alive "$(node_dir "$n")/kafka.pid"); then say "node $n: process $pid is running"; else missing+=("$n"); fi
  done
  if [ "${#missing[@]}" -eq "$BROKERS" ]; then
    if pid=$(running_pid); then
      die "the single-node broker that 'make up' started is running (pid $pid, port $KAFKA_PORT) and the cluster's first broker needs that port: stop it with 'make down', then 'make up KAFKA_BROKERS=$BROKERS' (the single node keeps its data in $DATA for later)"
    fi
    if "$PY" "$ROOT/deploy/local/probe.py" kafka --brokers "$BROKERS" --quiet 2>/dev/null; then
      say "a cluster already answers at $KAFKA_BOOTSTRAP_SERVERS ($("$PY" "$ROOT/deploy/local/probe.py" kafka)); reusing it"
      return 0
    fi
    if "$PY" "$ROOT/deploy/local/probe.py" kafka --quiet 2>/dev/null; then
      die "something else answers at $KAFKA_BOOTSTRAP_SERVERS ($("$PY" "$ROOT/deploy/local/probe.py" kafka)), fewer than $BROKERS brokers and not started by 'make up': stop it, or give the cluster other ports (KAFKA_PORT, KAFKA_CONTROLLER_PORT)"
    fi
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    fetch_jars
    local port
    for n in "${missing[@]}"; do
      for port in "$(node_port "$n")" "$(node_controller_port "$n")"; do
        ! port_taken "$port" || die "node $n: port $port is taken by another process; choose other ports with KAFKA_PORT and KAFKA_CONTROLLER_PORT (node n uses base + $STEP*(n-1))"
      done
    done
    mkdir -p "$CLUSTER_DIR"
    local voters=""
    for ((n = 1; n <= BROKERS; n++)); do voters+="${voters:+,}$n@127.0.0.1:$(node_controller_port "$n")"; done
    # One cluster id for all nodes, kept so that a node formatted later joins the same cluster.
    if [ ! -s "$CLUSTER_DIR/cluster.id" ]; then
      java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 > "$CLUSTER_DIR/cluster.id"
    fi
    local cluster_id; cluster_id=$(cat "$CLUSTER_DIR/cluster.id")
    local formatting=()
    for n in "${missing[@]}"; do
      local dir; dir=$(node_dir "$n")
      mkdir -p "$dir/data" "$dir/logs"
      sed -e "s#@NODE_ID@#$n#g" -e "s#@VOTERS@#$voters#g" -e "s#@KAFKA_PORT@#$(node_port "$n")#g" \
          -e "s#@CONTROLLER_PORT@#$(node_controller_port "$n")#g" -e "s#@DATA_DIR@#$dir/data#g" \
          "$ROOT/deploy/kafka/cluster.properties.in" > "$dir/server.properties"
      if [ ! -f "$dir/data/meta.properties" ]; then
        say "node $n: formatting storage in $dir/data (once)"
        # The three JVMs start in parallel: each takes a few seconds of CPU.
        java -Dlog4j2.configurationFile="$ROOT/deploy/kafka/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
          -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" --ignore-formatted \
          > "$dir/logs/format.log" 2>&1 &
        formatting+=("$!:$n")
      fi
    done
    local job
    for job in "${formatting[@]}"; do
      wait "${job%%:*}" || die "node ${job#*:}: formatting failed: $(tail -n 5 "$(node_dir "${job#*:}")/logs/format.log")"
    done
    for n in "${missing[@]}"; do
      local dir; dir=$(node_dir "$n")
      say "node $n: starting Apache Kafka $(kafka_version) on port $(node_port "$n"), controller $(node_controller_port "$n") (log: $dir/logs/server.log)"
      start_java "$dir/server.properties" "$dir/logs" "$dir/kafka.pid" 128m "${KAFKA_HEAP:-384m}"
    done
  fi
  local hint="see $CLUSTER_DIR/node*/logs/server.log"
  wait_ready "$BROKERS" "$hint"
  # Each node answers by itself: right after a node is killed the cluster still counts it until its
  # session times out, so the count alone would call a node ready that is still starting.
  for ((n = 1; n <= BROKERS; n++)); do
    KAFKA_BOOTSTRAP_SERVERS=localhost:$(node_port "$n") "$PY" "$ROOT/deploy/local/probe.py" kafka --brokers "$BROKERS" \
        --quiet --wait "${KAFKA_WAIT:-90}" 2>/dev/null \
      || die "node $n does not answer on port $(node_port "$n"); last lines of its log:
$(tail -n 20 "$(node_dir "$n")/logs/server.log" 2>/dev/null; tail -n 5 "$(node_dir "$n")/logs/stdout.log" 2>/dev/null)"
  done
}

stop_pids() { # "what:pidfile" ...: SIGTERM to all at once, then wait up to 30 s, then SIGKILL
  local entry pid pids=() names=()
  for entry in "$@"; do
    if pid=$(alive "${entry#*:}"); then
      say "stopping ${entry%%:*} (pid $pid)"
      kill "$pid"; pids+=("$pid"); names+=("${entry%%:*}")
    fi
  done
  local i
  for _ in $(seq 1 60); do
    local left=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ "$left" = 1 ] || break
    sleep 0.5
  done
  for i in "${!pids[@]}"; do
    if kill -0 "${pids[$i]}" 2>/dev/null; then say "${names[$i]} did not stop in 30 s; killing it"; kill -9 "${pids[$i]}"; fi
  done
  for entry in "$@"; do rm -f "${entry#*:}"; done
  return 0
}

down() {
  local targets=() found=0 file
  running_pid >/dev/null && targets+=("broker:$PIDFILE")
  for file in "$CLUSTER_DIR"/node*/kafka.pid; do
    [ -f "$file" ] || continue
    if alive "$file" >/dev/null; then targets+=("cluster $(basename "$(dirname "$file")"):$file"); else rm -f "$file"; fi
  done
  [ "${#targets[@]}" -gt 0 ] && found=1
  if [ "$found" = 0 ]; then
    say "no broker started by 'make up' is running"
    rm -f "$PIDFILE"; return 0
  fi
  stop_pids "${targets[@]}"
  say "stopped"
}

status() {
  local any=0 file pid
  if pid=$(running_pid); then say "single node: process $pid (started by make up)"; any=1; fi
  for file in "$CLUSTER_DIR"/node*/kafka.pid; do
    [ -f "$file" ] || continue
    local name; name=$(basename "$(dirname "$file")")
    local port; port=$(sed -n 's#^advertised.listeners=PLAINTEXT://[^:]*:##p' "$(dirname "$file")/server.properties" 2>/dev/null)
    if pid=$(alive "$file"); then say "cluster $name: process $pid, port ${port:-?} (started by make up)"; any=1
    else say "cluster $name: not running (port ${port:-?})"; fi
  done
  [ "$any" = 1 ] || say "no process started by make up"
  "$PY" "$ROOT/deploy/local/probe.py" kafka | sed 's/^/[kafka] answering: /' || say "nothing answers at $KAFKA_BOOTSTRAP_SERVERS"
}

case "${1:-}" in
  up) command -v java >/dev/null || die "Java is missing: install a JDK 17+ (e.g. 'apt-get install -y openjdk-17-jre-headless'), then run 'make up' again."
      if [ "$BROKERS" = 1 ]; then up_single; else up_cluster; fi ;;
  down) down ;;
  status) status ;;
  jars) fetch_jars; say "jars in $LIBS (Apache Kafka $(kafka_version))" ;;
  *) echo "usage: [KAFKA_BROKERS=1|3] $0 up|down|status|jars" >&2; exit 2 ;;
esac
