#!/usr/bin/env bash
# Replicas add write throughput: CreateTicket through one ticketd, then through two ticketd replicas on the same
# PostgreSQL database at once (half the workers on each), in one run. Nothing should serialise the replicas
# beyond the database itself, so two should reach at least what one does. Figures: BENCHMARKS.md.
#
#   bench/replicas.sh [seconds] [workers] [scenario]
#
# Uses target/release/{ticketd,ticketd-bench} (cargo build --release --workspace --bins) unless TICKETD_BIN_DIR is set.
set -euo pipefail
seconds=${1:-5}
workers=${2:-16}
scenario=${3:-create}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TICKETD_BIN_DIR:-$here/../target/release}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
url="$pg/ticketd_replicas"
servers=()
trap 'for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ticketd_replicas" -c "CREATE DATABASE ticketd_replicas" >/dev/null 2>&1
start() {
  "$bin/ticketd" --listen "127.0.0.1:$1" --database-url "$url" --log-level error &
  servers+=($!)
  for _ in $(seq 100); do
    "$bin/ticketd" healthcheck --addr "http://127.0.0.1:$1" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "ticketd on port $1 did not start" >&2; exit 1
}
throughput() { sed -n 's/.*throughput=\([0-9]*\)\/s.*/\1/p'; }
run() { "$bin/ticketd-bench" --addr "http://127.0.0.1:$1" --concurrency "$2" --duration-secs "$seconds" --scenario "$scenario"; }

start 50293
start 50294
echo "# PostgreSQL, $scenario, $workers workers, ${seconds}s, $(date -u +%FT%TZ)"
one=$(run 50293 "$workers" | tee /dev/stderr | throughput)
half=$((workers / 2))
run 50293 "$half" > "${TMPDIR:-/tmp}/replica-a.$$" &
first=$!
run 50294 "$half" > "${TMPDIR:-/tmp}/replica-b.$$"
wait "$first"
cat "${TMPDIR:-/tmp}/replica-a.$$" "${TMPDIR:-/tmp}/replica-b.$$" >&2
a=$(throughput < "${TMPDIR:-/tmp}/replica-a.$$")
b=$(throughput < "${TMPDIR:-/tmp}/replica-b.$$")
rm -f "${TMPDIR:-/tmp}/replica-a.$$" "${TMPDIR:-/tmp}/replica-b.$$"
echo "one replica: $one/s; two replicas: $a + $b = $((a + b))/s; ratio $(awk "BEGIN { printf \"%.2f\", ($a + $b) / $one }")×"
