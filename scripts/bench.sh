#!/usr/bin/env bash
# The benchmark: sessions ended, invoiced, posted and charged by the automatic sweep, against
# Odoo's own invoicing of sale orders, on a database of its own. Prints a table and writes it
# as JSON (bench/results/latest.json).
#   BENCH_SIZES   session counts to run (default 100,1000,5000)
#   BENCH_DB      database, recreated on every run (default bookconnect_bench, or
#                 ${BOOKCONNECT_TEST_DB}_bench when a parallel checkout sets BOOKCONNECT_TEST_DB)
#   BENCH_OUT     JSON output (default bench/results/latest.json)
#   BENCH_PROFILE=1  then profile 1,000 more sessions and 1,000 more orders (cProfile and the
#                 call sites of the SQL queries, into the JSON and bench/results/profile-*.txt;
#                 several minutes more)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$REPO/scripts/db.sh"

bash "$REPO/scripts/setup.sh"

BENCH_DB=${BENCH_DB:-${BOOKCONNECT_TEST_DB:-bookconnect}_bench}
LOGS=$STATE/logs
mkdir -p "$LOGS" "$REPO/bench/results"

# No demo data: the bench makes its own, and a lighter template copies faster.
# sale_management is the peer: Odoo's stock invoicing of confirmed sale orders.
template=$(ensure_template nodemo "$(addon_depends),sale_management")
clone_db "$template" "$BENCH_DB"

log "installing bookconnect_therapy on $BENCH_DB"
odoo_bin -d "$BENCH_DB" -i bookconnect_therapy --without-demo=all --stop-after-init --no-http \
  --log-level=warn --logfile="$LOGS/bench-install.log" ||
  die "installing the addon on $BENCH_DB failed; see $LOGS/bench-install.log"

log "running the benchmark on $BENCH_DB (Odoo's log: $LOGS/bench.log)"
rm -f "$LOGS/bench.log"
profile=()
[ "${BENCH_PROFILE:-0}" = 1 ] && profile=(--profile)
cd "$REPO"
"$PY" -m bench.run --conf "$ODOO_CONF" --db "$BENCH_DB" --odoo-src "$(odoo_src)" \
  --sizes "${BENCH_SIZES:-100,1000,5000}" --out "${BENCH_OUT:-$REPO/bench/results/latest.json}" \
  --logfile "$LOGS/bench.log" "${profile[@]}"

# Figures from a run that logged errors are not figures.
if grep -Eq ' (ERROR|CRITICAL) ' "$LOGS/bench.log" 2>/dev/null; then
  die "Odoo logged errors during the benchmark; see $LOGS/bench.log"
fi
