#!/usr/bin/env bash
# Runs the product: set-up, a demo database with the addon and its demo data (created once),
# then Odoo on http://127.0.0.1:8069 (BOOKCONNECT_HTTP_PORT to change it).
#   --reset-demo  drop and recreate the demo database first
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$REPO/scripts/db.sh"

bash "$REPO/scripts/setup.sh"

if [ "${1:-}" = --reset-demo ]; then
  log "dropping the demo database $DEMO_DB"
  drop_db "$DEMO_DB"
fi

installed=$(psql -d "$DEMO_DB" -Atc \
  "SELECT state FROM ir_module_module WHERE name = 'bookconnect_therapy'" 2>/dev/null || true)
if [ "$installed" != installed ]; then
  template=$(ensure_template demo "$(addon_depends)")
  clone_db "$template" "$DEMO_DB"
  log "installing bookconnect_therapy with its demo data on $DEMO_DB"
  mkdir -p "$STATE/logs"
  # payment_demo: Odoo's test payment provider, so that top-ups and invoice payments can be
  # tried in the portal without a Stripe account or the internet.
  odoo_bin -d "$DEMO_DB" -i bookconnect_therapy,payment_demo --stop-after-init --no-http \
    --logfile="$STATE/logs/demo-install.log" ||
    { drop_db "$DEMO_DB"; die "installing the demo database failed; see $STATE/logs/demo-install.log"; }
  "$PY" "$(odoo_src)/odoo-bin" shell -c "$ODOO_CONF" -d "$DEMO_DB" --no-http \
    --logfile="$STATE/logs/demo-install.log" >/dev/null <<'PY' ||
provider = env["payment.provider"].search([("code", "=", "demo")], limit=1)
provider.write({"state": "test", "allow_tokenization": True, "is_published": True})
# Debian's wkhtmltopdf (unpatched Qt) renders one document per call: let Odoo's invoice
# sending render invoices one at a time, as the patched build used in production would not need.
cron = env.ref("account.ir_cron_account_move_send")
cron.code = "model._cron_account_move_send(job_count=1)"
env.cr.commit()
PY
    die "could not enable the demo payment provider; see $STATE/logs/demo-install.log"
fi

cat >&2 <<MSG

  BookConnect Therapy is starting on  http://127.0.0.1:$HTTP_PORT/web/login  (database $DEMO_DB)

  Demo logins (user / password):
    practice manager   manager / manager
    therapist          therapist / therapist    (second therapist: therapist2 / therapist2)
    portal client      client / client          (second client: client2 / client2)
    administrator      admin / admin

  Stop with Ctrl+C.

MSG
# Invoice PDFs are rendered by wkhtmltopdf fetching this server's assets: point it at the
# address the server listens on ("localhost" may resolve to ::1, where nothing listens).
psql -d "$DEMO_DB" -qc "INSERT INTO ir_config_parameter (key, value, create_uid, write_uid,
  create_date, write_date) VALUES ('report.url', 'http://127.0.0.1:$HTTP_PORT', 1, 1, now(), now())
  ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"

exec "$PY" "$(odoo_src)/odoo-bin" -c "$ODOO_CONF" -d "$DEMO_DB" --db-filter="^$DEMO_DB\$" \
  --http-port="$HTTP_PORT" --gevent-port=$((HTTP_PORT + 3))
