# shellcheck shell=bash
# Shared settings for the set-up, run, test and bench scripts. Sourced, never run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${BOOKCONNECT_STATE:-$REPO/.state}
VENV=${BOOKCONNECT_VENV:-$REPO/.venv}
# Odoo's data directory (filestores of the template and test databases live there).
DATA_DIR=${BOOKCONNECT_DATA_DIR:-$STATE/data}
PY=$VENV/bin/python
ODOO_CONF=$STATE/odoo.conf
ODOO_SRC_FILE=$STATE/odoo-src
DB_USER=${PGUSER:-$(id -un)}
# Odoo refuses the role "postgres": run as a role of our own.
[ "$DB_USER" = postgres ] && DB_USER=odoo
export PGUSER=$DB_USER
DEMO_DB=${BOOKCONNECT_DEMO_DB:-bookconnect_demo}
HTTP_PORT=${BOOKCONNECT_HTTP_PORT:-8069}

log() { printf '\033[1m[bookconnect]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[bookconnect] error:\033[0m %s\n' "$*" >&2; exit 1; }

# The Odoo 18.0 source found by setup.sh.
odoo_src() {
  [ -f "$ODOO_SRC_FILE" ] || die "Odoo is not set up yet: run 'make setup'"
  cat "$ODOO_SRC_FILE"
}

odoo_bin() {
  "$PY" "$(odoo_src)/odoo-bin" -c "$ODOO_CONF" "$@"
}

# Every module the addon depends on, read from its manifest.
addon_depends() {
  "$PY" - "$REPO/bookconnect_therapy/__manifest__.py" <<'PYEOF'
import ast, sys
manifest = ast.literal_eval(open(sys.argv[1]).read())
print(",".join(sorted(manifest["depends"])))
PYEOF
}

db_exists() {
  [ "$(psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]
}
