"""The scheduled actions are ``noupdate`` data: point the existing ones at the services that
now own their methods."""

from odoo import SUPERUSER_ID, api

# cron xml id -> (model that runs it, code)
CRON_TARGETS = {
    "ir_cron_session_reminders": (
        "bookconnect.reminder.manager",
        "model._cron_send_reminders()",
    ),
    "ir_cron_payment_reminders": (
        "bookconnect.reminder.manager",
        "model._cron_payment_reminders()",
    ),
    "ir_cron_release_unconfirmed_bookings": (
        "bookconnect.booking",
        "model._cron_release_unconfirmed_bookings()",
    ),
}


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    for xml_id, (model, code) in CRON_TARGETS.items():
        cron = env.ref(f"bookconnect_therapy.{xml_id}", raise_if_not_found=False)
        if cron:
            cron.write({"model_id": env["ir.model"]._get_id(model), "code": code})
