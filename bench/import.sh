#!/usr/bin/env bash
# Import throughput, one store, one run: N tickets through one ImportTickets stream, then the same N through
# BatchCreateTickets (batches of 100, one client and 16 clients), each on a fresh database. Figures and their
# meaning: BENCHMARKS.md "Bulk import".
#
#   bench/import.sh sqlite|postgres [tickets]
#
# Uses target/release/{ticketd,ticketd-bench} (cargo build --release --workspace --bins) unless TICKETD_BIN_DIR is set.
set -euo pipefail
store=${1:?usage: bench/import.sh sqlite|postgres [tickets]}
tickets=${2:-100000}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TICKETD_BIN_DIR:-$here/../target/release}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
port=50291
server=""
trap 'if [ -n "$server" ]; then kill $server 2>/dev/null || true; fi; rm -rf "$work"' EXIT

fresh_server() {
  case $store in
    sqlite)
      rm -f "$work"/ticketd.db*
      url="sqlite://$work/ticketd.db?mode=rwc" ;;
    postgres)
      psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ticketd_import" -c "CREATE DATABASE ticketd_import" >/dev/null 2>&1
      url="$pg/ticketd_import" ;;
    *) echo "unknown store $store" >&2; exit 2 ;;
  esac
  "$bin/ticketd" --listen 127.0.0.1:$port --database-url "$url" --log-level error &
  server=$!
  for _ in $(seq 100); do
    "$bin/ticketd" healthcheck --addr http://127.0.0.1:$port >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "ticketd did not start" >&2; exit 1
}
stop_server() { kill -TERM $server; wait $server || true; server=""; }
bench() { "$bin/ticketd-bench" --addr http://127.0.0.1:$port --hot-tickets 1 "$@"; }

echo "# $store, $tickets tickets, $(date -u +%FT%TZ)"
fresh_server
bench --scenario import --import-tickets "$tickets" --server-pid $server
stop_server
for clients in 1 16; do
  fresh_server
  printf 'BatchCreateTickets, %s client(s): ' $clients
  bench --scenario noop --duration-secs 1 --concurrency $clients --seed "$tickets" | grep -E '^seeded'
  stop_server
done
