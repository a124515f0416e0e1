#!/usr/bin/env bash
# The fault experiments of RELIABILITY.md, reproducible: a release build of ticketd on a throwaway PostgreSQL
# cluster, driven by bench/faults/faults.py (writers that retry UNAVAILABLE and DEADLINE_EXCEEDED with the same
# request_id, a WatchTickets watcher that resumes from the last event it saw), while this script injects:
#
#   restarts  7 PostgreSQL restarts under 8 writers, alternately `pg_ctl restart -m fast` and `-m immediate`
#   outage    PostgreSQL stopped for 8 s (`pg_ctl stop -m fast`, then start) under 8 writers
#   kill9     4 x kill -9 of the server (restarted at once) under 4 writers and the watcher, which also
#             resumes its stream on purpose 60 times
#   sweep     bad and extreme requests to every method the server reflects (empty, garbage bytes, invalid
#             UTF-8, NUL characters, huge strings, negative and extreme numbers, unknown enum values, bogus
#             page tokens and field masks, an 8 MiB message...)
#
# After each write phase the acknowledged tickets are compared with ListTickets (lost, duplicated, stored
# under another id), the watcher's events with ListTicketHistory (missed, duplicated, out of order), and the
# status codes of every attempt are counted by kind, with the longest wait for one answer and for an
# acknowledgement. The last lines are the summary table RELIABILITY.md keeps; the exit status is 1 when
# anything was lost or duplicated, a stream missed or repeated an event, or any call got INTERNAL.
#
# Usage:  bash bench/faults.sh            (2-3 minutes once ticketd is built; not run by CI)
#   TICKETD_BIN=path         test this binary (default: `cargo build --release --bin ticketd`, then
#                            target/release/ticketd)
#   FAULTS_PG_PORT=55432     port of the throwaway PostgreSQL cluster
#   FAULTS_PORT=50997        port of the server
#
# The machine's own PostgreSQL (:5432) is never touched: the script initdb's a cluster into a temporary
# directory (as the `postgres` OS user when run as root), restarts and stops only that one, and removes it
# on exit, whatever happens. Needs PostgreSQL's server binaries under /usr/lib/postgresql/*/bin, python3 with
# venv and pip (grpcio and friends are installed into target/faults-venv on the first run). Logs and the
# JSON results of each phase stay in target/faults/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

PG_PORT=${FAULTS_PG_PORT:-55432}
PORT=${FAULTS_PORT:-50997}
ADDR="127.0.0.1:$PORT"
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
OUT="$ROOT/target/faults"
VENV="$ROOT/target/faults-venv"
PY="$VENV/bin/python"
FAULTS_PY="$ROOT/bench/faults/faults.py"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

SERVER_PID=""
LOAD_PID=""
PGROOT=""

fail() {
    echo "faults: $*" >&2
    exit 1
}

step() { echo "--- $*"; }

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# as_pg CMD...: run a PostgreSQL tool as the owner of the throwaway cluster (from a directory it may enter).
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd "$PGROOT" && runuser -u postgres -- "$@")
    else
        (cd "$PGROOT" && "$@")
    fi
}

pg_ctl() {
    as_pg "$PGBIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/postgres.log" "$@"
}

cleanup() {
    local rc=$?
    set +e
    if [[ -n "$LOAD_PID" ]]; then
        kill "$LOAD_PID" 2>/dev/null
        wait "$LOAD_PID" 2>/dev/null
    fi
    if [[ -n "$SERVER_PID" ]]; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ -n "$PGROOT" ]]; then
        if [[ -f "$PGROOT/data/postmaster.pid" ]]; then
            pg_ctl -m immediate -w stop >/dev/null 2>&1
        fi
        cp "$PGROOT/postgres.log" "$OUT/postgres.log" 2>/dev/null
        rm -rf "$PGROOT"
    fi
    [[ $rc -eq 0 ]] || echo "faults: exit status $rc; logs in target/faults/" >&2
    exit "$rc"
}
trap cleanup EXIT
# Interrupted or terminated: exit through the EXIT trap, which stops and removes everything.
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server: start ticketd in the background; after a kill -9 the port may take a moment to be free.
start_server() {
    local attempt
    for attempt in $(seq 1 20); do
        "$BIN" --listen "$ADDR" --database-url "$DB_URL" --auth none --log-level warn \
            >>"$OUT/ticketd.log" 2>&1 </dev/null &
        SERVER_PID=$!
        for _ in $(seq 1 100); do
            port_open "$PORT" && return 0
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        echo "  ticketd did not listen (attempt $attempt), trying again"
        sleep 0.5
    done
    tail -20 "$OUT/ticketd.log"
    fail "ticketd does not start"
}

# start_load PHASE WRITERS [faults.py write options]: writers (and checks) in the background, until end_load.
start_load() {
    local phase="$1" writers="$2"
    shift 2
    rm -f "$OUT/stop"
    "$PY" "$FAULTS_PY" write "$ADDR" --phase "$phase" --writers "$writers" --stop-file "$OUT/stop" \
        --out "$OUT/$phase.json" "$@" &
    LOAD_PID=$!
    sleep 4 # the writers are at full speed before the first fault
}

end_load() {
    sleep 4 # and back at full speed after the last one
    touch "$OUT/stop"
    wait "$LOAD_PID"
    LOAD_PID=""
}

# ------------------------------------------------------------------------------------------------- setup
rm -rf "$OUT"
mkdir -p "$OUT"
for port in "$PG_PORT" "$PORT"; do
    ! port_open "$port" || fail "port $port is in use: set FAULTS_PG_PORT / FAULTS_PORT"
done

if [[ -n "${TICKETD_BIN:-}" ]]; then
    BIN=$(realpath "$TICKETD_BIN")
else
    step "cargo build --release --bin ticketd"
    cargo build --release --locked --bin ticketd
    BIN="$ROOT/target/release/ticketd"
fi
[[ -x "$BIN" ]] || fail "$BIN is not an executable"

if ! "$PY" -c 'import grpc, grpc_reflection, grpc_health, google.protobuf' 2>/dev/null; then
    step "python venv with grpcio in target/faults-venv"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q grpcio grpcio-reflection grpcio-health-checking protobuf
fi

# shellcheck disable=SC2012 # version directories: plain names
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
[[ -x "$PGBIN/initdb" ]] || fail "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
PGROOT=$(mktemp -d "${TMPDIR:-/tmp}/ticketd-faults-pg.XXXXXX")
[[ $(id -u) -ne 0 ]] || chown postgres: "$PGROOT"
step "throwaway PostgreSQL cluster in $PGROOT on port $PG_PORT ($("$PGBIN/postgres" --version))"
as_pg "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 --no-locale >"$OUT/initdb.log"
cat >>"$PGROOT/data/postgresql.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGROOT'
EOF
pg_ctl -w start >/dev/null

echo "ticketd: $BIN ($(git -C "$ROOT" log -1 --format='%h %s' 2>/dev/null || echo 'no git'))"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_server
echo "ticketd listens on $ADDR (pid $SERVER_PID), database $DB_URL"

# ------------------------------------------------------------------------------------------------- phases
step "restarts: 7 PostgreSQL restarts under 8 writers"
start_load restarts 8
for mode in fast immediate fast immediate fast immediate fast; do
    echo "  pg_ctl restart -m $mode"
    pg_ctl -m "$mode" -w restart >/dev/null
    sleep 4
done
end_load

step "outage: PostgreSQL stopped for 8 s under 8 writers"
start_load outage 8
echo "  pg_ctl stop -m fast; sleep 8; pg_ctl start"
pg_ctl -m fast -w stop >/dev/null
sleep 8
pg_ctl -w start >/dev/null
end_load

step "kill9: 4 x kill -9 of ticketd under 4 writers and a watcher resuming its stream"
start_load kill9 4 --watch --resumes 60 --resume-every 0.4
for _ in 1 2 3 4; do
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    echo "  killed ticketd (pid $SERVER_PID) with SIGKILL; starting it again"
    start_server
    sleep 6
done
end_load

step "sweep: bad and extreme requests to every method"
"$PY" "$FAULTS_PY" sweep "$ADDR" --out "$OUT/sweep.json"
kill -0 "$SERVER_PID" 2>/dev/null || fail "ticketd died during the sweep (log: target/faults/ticketd.log)"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || echo "ticketd exited with status $? after SIGTERM"
SERVER_PID=""

# ------------------------------------------------------------------------------------------------- summary
step "summary (target/faults/summary.md)"
"$PY" "$FAULTS_PY" report "$OUT"/{restarts,outage,kill9,sweep}.json | tee "$OUT/summary.md"
