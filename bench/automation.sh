#!/usr/bin/env bash
# Automation's cost, one store, one run: CreateTicket throughput with no rule, with 10 enabled rules that
# match nothing (each condition evaluated on every write), and with 10 that each fire (a tag per rule, so 10
# rule events per create); then webhook deliveries per second to a local receiver. A fresh database for each.
# Figures and their meaning: BENCHMARKS.md.
#
#   bench/automation.sh sqlite|postgres [seconds] [workers]
#
# Uses target/release/{ticketd,ticketd-bench} (cargo build --release --workspace --bins) unless TICKETD_BIN_DIR is set.
set -euo pipefail
store=${1:?usage: bench/automation.sh sqlite|postgres [seconds] [workers]}
seconds=${2:-5}
workers=${3:-16}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TICKETD_BIN_DIR:-$here/../target/release}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
port=50291
server=""
trap 'if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

fresh_server() {
  local url
  case $store in
    sqlite) rm -f "$work"/ticketd.db*; url="sqlite://$work/ticketd.db?mode=rwc" ;;
    postgres)
      psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ticketd_automation" -c "CREATE DATABASE ticketd_automation" >/dev/null 2>&1
      url="$pg/ticketd_automation" ;;
    *) echo "unknown store $store" >&2; exit 2 ;;
  esac
  "$bin/ticketd" --listen 127.0.0.1:$port --database-url "$url" --log-level error --webhook-allow-private-targets &
  server=$!
  for _ in $(seq 100); do
    "$bin/ticketd" healthcheck --addr http://127.0.0.1:$port >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "ticketd did not start" >&2; exit 1
}
stop_server() { kill -TERM "$server"; wait "$server" || true; server=""; }
run() { "$bin/ticketd-bench" --addr http://127.0.0.1:$port --concurrency "$workers" --duration-secs "$seconds" "$@"; }

echo "# $store, $workers workers, ${seconds}s each, $(date -u +%FT%TZ)"
echo "## create, no rule"; fresh_server; run --scenario create; stop_server
echo "## create, 10 rules matching nothing"; fresh_server; run --scenario create --rules 10; stop_server
echo "## create, 10 rules each firing"; fresh_server; run --scenario create --rules 10 --rules-fire; stop_server
echo "## webhook deliveries"; fresh_server; run --scenario webhooks --deliveries 5000; stop_server
