#!/usr/bin/env bash
# Runs the product: set-up, a demo database with the addon and its demo data (created once),
# a mail sink that keeps every email the demo sends (.state/mail/index.html), then Odoo on
# http://127.0.0.1:8069 (BOOKCONNECT_HTTP_PORT to change it). Ctrl+C stops both.
#   --reset-demo  drop and recreate the demo database first
# Environment: BOOKCONNECT_SMTP_PORT (the mail sink's port on 127.0.0.1, default the HTTP port
# + 2), BOOKCONNECT_MAIL_DIR (where the mail is kept, default .state/mail),
# BOOKCONNECT_DEMO_TEMPLATE (a database to copy the demo from instead of the template built
# from the addon's dependencies; the system tests use theirs).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$REPO/scripts/db.sh"

bash "$REPO/scripts/setup.sh"

SMTP_PORT=${BOOKCONNECT_SMTP_PORT:-$((HTTP_PORT + 2))}
MAIL_DIR=$(realpath -m "${BOOKCONNECT_MAIL_DIR:-$STATE/mail}")
BASE_URL=http://127.0.0.1:$HTTP_PORT
MAIL_SERVER="Demo mail sink (make run)"
INSTALL_LOG=$STATE/logs/$DEMO_DB-install.log

# Points the demo database at this run's addresses: web.base.url (frozen, or the first admin
# to sign in would replace it with whatever address their browser used), the links computed
# from it, the address wkhtmltopdf fetches invoice assets from (report.url: "localhost" may
# resolve to ::1, where nothing listens) and the outgoing mail server.
point_demo_at_this_run() {
  local old_base
  old_base=$(psql -d "$DEMO_DB" -Atc \
    "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'")
  psql -d "$DEMO_DB" -q -v ON_ERROR_STOP=1 -v base="$BASE_URL" -v old_base="$old_base" \
    -v smtp_port="$SMTP_PORT" -v mail_server="$MAIL_SERVER" <<'SQL'
INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
VALUES ('web.base.url', :'base', 1, 1, now(), now()),
       ('web.base.url.freeze', 'True', 1, 1, now(), now()),
       ('report.url', :'base', 1, 1, now(), now())
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = now();
-- Video-call links are stored when a session is created: move them to this address.
UPDATE calendar_event
   SET videocall_location = :'base' || substr(videocall_location, length(:'old_base') + 1)
 WHERE :'old_base' <> :'base' AND starts_with(videocall_location, :'old_base' || '/');
UPDATE ir_mail_server SET smtp_host = '127.0.0.1', smtp_port = :smtp_port
 WHERE name = :'mail_server';
SQL
}

if [ "${1:-}" = --reset-demo ]; then
  log "dropping the demo database $DEMO_DB"
  drop_db "$DEMO_DB"
fi

installed=$(psql -d "$DEMO_DB" -Atc \
  "SELECT state FROM ir_module_module WHERE name = 'bookconnect_therapy'" 2>/dev/null || true)
if [ "$installed" != installed ]; then
  template=${BOOKCONNECT_DEMO_TEMPLATE:-$(ensure_template demo "$(addon_depends)")}
  clone_db "$template" "$DEMO_DB"
  # Before the demo data: its sessions' video-call links are made from web.base.url.
  point_demo_at_this_run
  log "installing bookconnect_therapy with its demo data on $DEMO_DB"
  mkdir -p "$STATE/logs"
  # payment_demo: Odoo's test payment provider, so that top-ups and invoice payments can be
  # tried in the portal without a Stripe account or the internet.
  odoo_bin -d "$DEMO_DB" -i bookconnect_therapy,payment_demo --stop-after-init --no-http \
    --logfile="$INSTALL_LOG" ||
    { drop_db "$DEMO_DB"; die "installing the demo database failed; see $INSTALL_LOG"; }
fi

configured=$(psql -d "$DEMO_DB" -Atc \
  "SELECT count(*) FROM ir_mail_server WHERE name = '$MAIL_SERVER'")
if [ "$configured" = 0 ]; then
  log "configuring the demo database $DEMO_DB (payment provider, mail)"
  BOOKCONNECT_MAIL_SERVER=$MAIL_SERVER BOOKCONNECT_SMTP_PORT=$SMTP_PORT \
    "$PY" "$(odoo_src)/odoo-bin" shell -c "$ODOO_CONF" -d "$DEMO_DB" --no-http \
    --logfile="$INSTALL_LOG" >/dev/null <<'PY' ||
import os

provider = env["payment.provider"].search([("code", "=", "demo")], limit=1)
provider.write({"state": "test", "allow_tokenization": True, "is_published": True})
# Debian's wkhtmltopdf (unpatched Qt) renders one document per call: let Odoo's invoice
# sending render invoices one at a time, as the patched build used in production would not need.
cron = env.ref("account.ir_cron_account_move_send")
cron.code = "model._cron_account_move_send(job_count=1)"
# Every email the demo sends goes to the mail sink run.sh starts (its port is set at each start).
env["ir.mail_server"].create(
    {
        "name": os.environ["BOOKCONNECT_MAIL_SERVER"],
        "smtp_host": "127.0.0.1",
        "smtp_port": int(os.environ["BOOKCONNECT_SMTP_PORT"]),
        "smtp_encryption": "none",
        "sequence": 1,
    }
)
# Odoo sends its queue of email hourly; the demo every minute, so that a reminder or a
# receipt shows in the sink a minute or so after it was queued.
env.ref("mail.ir_cron_mail_scheduler_action").write(
    {"interval_number": 1, "interval_type": "minutes"}
)
env.cr.commit()
PY
    die "could not configure the demo database; see $INSTALL_LOG"
fi
point_demo_at_this_run

# The mail sink and Odoo run in the background, so that these traps run as soon as the run is
# interrupted or terminated (not once Odoo has exited), and stop both.
sink_pid='' odoo_pid='' interrupted=0
stop_children() {
  if [ "$interrupted" = 1 ] && [ -n "$odoo_pid" ]; then
    # Ctrl+C reached Odoo too (the terminal signals its whole process group): let it shut
    # down by itself for a few seconds, as a second signal would make it stop at once.
    for _ in $(seq 50); do kill -0 "$odoo_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for pid in $odoo_pid $sink_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_children EXIT
trap 'interrupted=1; exit 130' INT
trap 'exit 143' TERM

if (: <"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; then
  die "port $SMTP_PORT (the mail sink's) is taken: set BOOKCONNECT_SMTP_PORT to a free port"
fi
"$PY" "$REPO/scripts/smtp_sink.py" --port "$SMTP_PORT" --folder "$MAIL_DIR" --parent-pid $$ &
sink_pid=$!
until (: <"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null; do
  kill -0 "$sink_pid" 2>/dev/null || die "the mail sink could not start on port $SMTP_PORT"
  sleep 0.1
done

cat >&2 <<MSG

  BookConnect Therapy is starting on  $BASE_URL/web/login  (database $DEMO_DB)

  Demo logins (user / password):
    practice manager   manager / manager
    accountant         accountant / accountant
    therapist          therapist / therapist    (second therapist: therapist2 / therapist2)
    portal client      client / client          (second client: client2 / client2)
    administrator      admin / admin

  Email the demo sends is kept here, not sent:  file://$MAIL_DIR/index.html
  (mail sink on 127.0.0.1:$SMTP_PORT; queued mail goes out within a minute or so)

  Stop with Ctrl+C.

MSG

# queue_job loaded server-wide starts its job runner, which sends the payments to Stripe.
"$PY" "$(odoo_src)/odoo-bin" -c "$ODOO_CONF" -d "$DEMO_DB" --db-filter="^$DEMO_DB\$" \
  --http-port="$HTTP_PORT" --gevent-port=$((HTTP_PORT + 3)) --load=base,web,queue_job &
odoo_pid=$!
wait "$odoo_pid"
