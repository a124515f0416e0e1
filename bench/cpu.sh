#!/usr/bin/env bash
# Where a call's CPU goes: user and system CPU per call of ticketd, of PostgreSQL (every `postgres` process:
# the pool's backends live through the run) and of ticketd-bench, over one measured run of a scenario after a
# warm-up. A ratio against the raw database says how far off the service is; this says on which side of which
# socket the time is spent. Figures: BENCHMARKS.md.
#
#   bench/cpu.sh postgres|sqlite scenario [seconds] [workers]
#
# Uses target/release/{ticketd,ticketd-bench} unless TICKETD_BIN_DIR is set.
set -euo pipefail
store=${1:?usage: bench/cpu.sh postgres|sqlite scenario [seconds] [workers]}
scenario=${2:?usage: bench/cpu.sh postgres|sqlite scenario [seconds] [workers]}
seconds=${3:-8}
workers=${4:-16}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TICKETD_BIN_DIR:-$here/../target/release}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
port=50296
server=
trap 'if [ -n "$server" ]; then kill $server 2>/dev/null || true; fi; rm -rf "$work"' EXIT

case $store in
  sqlite) url="sqlite://$work/ticketd.db?mode=rwc" ;;
  postgres)
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ticketd_cpu" -c "CREATE DATABASE ticketd_cpu" >/dev/null 2>&1
    url="$pg/ticketd_cpu" ;;
  *) echo "unknown store $store" >&2; exit 2 ;;
esac

# Clock ticks used so far by the given processes: field 14 is user time, 15 system time.
ticks() {
  local field=$1 total=0 pid value
  shift
  for pid in "$@"; do
    # A backend may end between the listing and the read.
    value=$(awk -v f="$field" '{ print $f }' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + ${value:-0}))
  done
  echo $total
}
postgres_pids() { pgrep -x postgres || true; }

"$bin/ticketd" --listen 127.0.0.1:$port --database-url "$url" --log-level error \
  --auth none --allow-insecure-auth-none &
server=$!
for _ in $(seq 100); do
  "$bin/ticketd" healthcheck --addr http://127.0.0.1:$port >/dev/null 2>&1 && break
  sleep 0.2
done
bench_args=(--addr "http://127.0.0.1:$port" --concurrency "$workers" --scenario "$scenario")
case $scenario in
  raw-*) bench_args+=(--raw-database-url "$url") ;;
esac
"$bin/ticketd-bench" "${bench_args[@]}" --duration-secs 2 >/dev/null

# PostgreSQL's processes are sampled while the run lasts: a raw scenario's backends start and end with it.
declare -A pg_from_user pg_from_system pg_to_user pg_to_system
for pid in $(postgres_pids); do
  pg_from_user[$pid]=$(ticks 14 "$pid")
  pg_from_system[$pid]=$(ticks 15 "$pid")
done
sample_postgres() {
  local pid
  for pid in $(postgres_pids); do
    pg_to_user[$pid]=$(ticks 14 "$pid")
    pg_to_system[$pid]=$(ticks 15 "$pid")
  done
}
server_user=$(ticks 14 $server)
server_system=$(ticks 15 $server)
"$bin/ticketd-bench" "${bench_args[@]}" --duration-secs "$seconds" >"$work/bench.out" &
bench=$!
bench_user=0
bench_system=0
# The bench's own counters, read until it exits (a finished process has no /proc entry left to read).
while kill -0 $bench 2>/dev/null; do
  bench_user=$(ticks 14 $bench)
  bench_system=$(ticks 15 $bench)
  sample_postgres
  sleep 0.1
done
wait $bench
server_user=$(($(ticks 14 $server) - server_user))
server_system=$(($(ticks 15 $server) - server_system))
pg_user=0
pg_system=0
for pid in "${!pg_to_user[@]}"; do
  pg_user=$((pg_user + pg_to_user[$pid] - ${pg_from_user[$pid]:-0}))
  pg_system=$((pg_system + pg_to_system[$pid] - ${pg_from_system[$pid]:-0}))
done
calls=$(grep -o 'ok=[0-9]*' "$work/bench.out" | head -1 | cut -d= -f2)
hz=$(getconf CLK_TCK)
per_call() { awk -v t="$1" -v n="$calls" -v hz="$hz" 'BEGIN { printf "%6.0f", t * 1e6 / hz / n }'; }
cat "$work/bench.out"
echo "CPU per call (µs), $store $scenario, $calls calls:  user  system"
echo "  ticketd                                   $(per_call $server_user)  $(per_call $server_system)"
if [ "$store" = postgres ]; then
  echo "  postgres (all processes)                  $(per_call $pg_user)  $(per_call $pg_system)"
fi
echo "  ticketd-bench (at least)                  $(per_call $bench_user)  $(per_call $bench_system)"
