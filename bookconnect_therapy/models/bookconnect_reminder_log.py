from odoo import fields, models
from odoo.tools import SQL


class BookconnectReminderLog(models.Model):
    """One line per reminder sent: the claim that stops a second worker, a second run of the
    job or a moved session from sending it again."""

    _name = "bookconnect.reminder.log"
    _description = "Reminder sent"
    _order = "id desc"

    kind = fields.Selection(
        [("session", "Session reminder"), ("payment", "Payment reminder")], required=True
    )
    session_id = fields.Many2one(
        "bookconnect.therapy.session", required=True, ondelete="cascade", index=True
    )
    invoice_id = fields.Many2one("account.move", ondelete="cascade", index="btree_not_null")
    offset = fields.Integer(help="Hours before the start, or days after the due date.")
    channels = fields.Char(help="How the reminder went out (email, sms) or why it did not.")

    def init(self):
        result = super().init()
        self.env.cr.execute(
            SQL(
                """
                CREATE UNIQUE INDEX IF NOT EXISTS bookconnect_reminder_log_once
                    ON bookconnect_reminder_log
                       (kind, session_id, COALESCE(invoice_id, 0), "offset")
                """
            )
        )
        return result

    def _claim(self, rows):
        """Insert the reminders ``rows`` (dicts of kind, session_id, invoice_id, offset) that
        were not sent yet, in one statement; return those this transaction claimed."""
        if not rows:
            return []
        values = [
            SQL(
                "(%s, %s, %s, %s, now() at time zone 'UTC', %s)",
                r["kind"],
                r["session_id"],
                r.get("invoice_id"),
                r["offset"],
                self.env.uid,
            )
            for r in rows
        ]
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO bookconnect_reminder_log
                       (kind, session_id, invoice_id, "offset", create_date, create_uid)
                VALUES %s
                ON CONFLICT DO NOTHING
                RETURNING id, kind, session_id, invoice_id, "offset"
                """,
                SQL(", ").join(values),
            )
        )
        return [
            {"id": i, "kind": k, "session_id": s, "invoice_id": inv, "offset": o}
            for i, k, s, inv, o in self.env.cr.fetchall()
        ]
