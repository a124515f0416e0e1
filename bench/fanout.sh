#!/usr/bin/env bash
# WatchTickets fan-out against its yardstick, in one run: ticketd on PostgreSQL, ticketd on SQLite, and the
# raw-broadcast server (a bare tonic server-streaming broadcast of the same messages, `ticketd-bench
# --serve-raw-broadcast`), each with the same subscribers, connections, write rate and duration, measured by
# the same tool. Prints each run's line, then the figures side by side. Figures: BENCHMARKS.md.
#
#   bench/fanout.sh [subscribers] [seconds]
#
# Uses target/release/{ticketd,ticketd-bench} unless TICKETD_BIN_DIR is set; TICKETD_SERVER names another
# ticketd binary to measure (an older build, say) with this bench.
set -euo pipefail
subscribers=${1:-10000}
seconds=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TICKETD_BIN_DIR:-$here/../target/release}
server_bin=${TICKETD_SERVER:-$bin/ticketd}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
connections=${FANOUT_CONNECTIONS:-100}
rate=${FANOUT_WRITE_RATE:-10}
work=$(mktemp -d)
port=50295
server=
trap 'if [ -n "$server" ]; then kill $server 2>/dev/null || true; fi; rm -rf "$work"' EXIT

# Total CPU seconds (user + system) a process has used so far.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"; }

wait_ready() {
  for _ in $(seq 150); do
    if [ "$1" = raw ]; then
      (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
    else
      "$server_bin" healthcheck --addr http://127.0.0.1:$port >/dev/null 2>&1 && return 0
    fi
    sleep 0.2
  done
  echo "server did not start" >&2
  exit 1
}

# run NAME: starts the server NAME stands for, drives it, stops it; appends "NAME line cpu" to the results.
run() {
  local name=$1 url
  case $name in
    raw-broadcast)
      "$bin/ticketd-bench" --serve-raw-broadcast 127.0.0.1:$port &
      server=$!
      wait_ready raw ;;
    postgres|sqlite)
      if [ "$name" = postgres ]; then
        psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ticketd_fanout" -c "CREATE DATABASE ticketd_fanout" >/dev/null 2>&1
        url="$pg/ticketd_fanout"
      else
        url="sqlite://$work/ticketd.db?mode=rwc"
      fi
      "$server_bin" --listen 127.0.0.1:$port --database-url "$url" --log-level error &
      server=$!
      wait_ready ticketd ;;
  esac
  local scenario=watch-fanout
  [ "$name" = raw-broadcast ] && scenario=raw-broadcast
  local line
  line=$("$bin/ticketd-bench" --addr http://127.0.0.1:$port --scenario $scenario --subscribers "$subscribers" \
    --connections "$connections" --write-rate "$rate" --duration-secs "$seconds" --hot-tickets 1 \
    --server-pid $server)
  local cpu
  cpu=$(cpu_seconds $server)
  echo "$name: $line server_cpu=${cpu}s"
  results+=("$name $line server_cpu=${cpu}s")
  kill -TERM $server; wait $server 2>/dev/null || true
  server=
  rm -f "$work"/ticketd.db*
}

results=()
echo "# fan-out: $subscribers subscribers over $connections connections, $rate writes/s for ${seconds}s, $(date -u +%FT%TZ)"
echo "# server: $server_bin"
for name in raw-broadcast postgres sqlite; do
  run $name
done

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
raw_p99=$(field p99 "${results[0]}" | tr -d ms)
printf '\n| %-13s | %-17s | %-30s | %-10s | %-7s | %-10s | %-9s |\n' server delivered 'p50 / p90 / p99 / max (ms)' KiB/stream bytes/msg 'server CPU' 'p99 / raw'
printf '|%s|%s|%s|%s|%s|%s|%s|\n' --------------- ------------------- -------------------------------- ------------ --------- ------------ -----------
for result in "${results[@]}"; do
  name=${result%% *}
  p99=$(field p99 "$result" | tr -d ms)
  printf '| %-13s | %-17s | %-30s | %-10s | %-7s | %-10s | %-9s |\n' "$name" "$(field delivered "$result")" \
    "$(field p50 "$result" | tr -d ms) / $(field p90 "$result" | tr -d ms) / $p99 / $(field max "$result" | tr -d ms)" \
    "$(field per_stream "$result" | tr -d KiB)" "$(field message_bytes "$result")" "$(field server_cpu "$result")" \
    "$(awk -v a="$p99" -v b="$raw_p99" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }')"
done
