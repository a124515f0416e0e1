#!/usr/bin/env bash
# Service against the raw database, one store, one run: starts ticketd on a fresh database, drives it with
# ticketd-bench, then measures the database alone (ticketd-bench's raw-* scenarios through sqlx, and pgbench
# for PostgreSQL) on the same machine right after. Figures and their meaning: BENCHMARKS.md.
#
#   bench/compare.sh sqlite|postgres [seconds] [workers]
#
# Uses target/release/{ticketd,ticketd-bench} (cargo build --release --workspace --bins) unless TICKETD_BIN_DIR is set.
set -euo pipefail
store=${1:?usage: bench/compare.sh sqlite|postgres [seconds] [workers]}
seconds=${2:-5}
workers=${3:-16}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TICKETD_BIN_DIR:-$here/../target/release}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
port=50290
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

case $store in
  sqlite)
    url="sqlite://$work/ticketd.db?mode=rwc" ;;
  postgres)
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ticketd_compare" -c "CREATE DATABASE ticketd_compare" >/dev/null 2>&1
    url="$pg/ticketd_compare" ;;
  *) echo "unknown store $store" >&2; exit 2 ;;
esac

"$bin/ticketd" --listen 127.0.0.1:$port --database-url "$url" --log-level error &
server=$!
for _ in $(seq 100); do
  "$bin/ticketd" healthcheck --addr http://127.0.0.1:$port >/dev/null 2>&1 && break
  sleep 0.2
done
run() { "$bin/ticketd-bench" --addr http://127.0.0.1:$port --concurrency "$workers" --duration-secs "$seconds" "$@"; }
echo "# $store, $workers workers, ${seconds}s each, $(date -u +%FT%TZ)"
for scenario in noop create get update-blind update; do
  run --scenario $scenario
done
kill -TERM $server; wait $server || true

# The raw figures use a copy of the service's own tickets table, in the same database.
for scenario in raw-insert raw-select raw-update; do
  run --scenario $scenario --raw-database-url "$url"
done
if [ "$store" = postgres ] && command -v pgbench >/dev/null; then
  psql "$url" -q -f "$here/pgbench/schema.sql" >/dev/null
  for script in insert select update; do
    printf 'pgbench %s: ' $script
    pgbench "$url" -n -c "$workers" -j 2 -T "$seconds" -f "$here/pgbench/$script.sql" | grep -E '^tps'
  done
fi
