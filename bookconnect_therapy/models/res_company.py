from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..core import parse_positive_ints


class ResCompany(models.Model):
    _inherit = "res.company"

    bookconnect_policy_id = fields.Many2one(
        "bookconnect.billing.policy",
        string="Default billing policy",
        help="Used for sessions whose client and therapist have no policy of their own.",
    )
    bookconnect_call_secret = fields.Char(
        "Call-events secret",
        groups="base.group_system",
        copy=False,
        help="Shared secret signing the join/leave events an external video service posts. "
        "Without it the endpoint refuses every event.",
    )
    bookconnect_auto_end_minutes = fields.Integer(
        "End a call after both left (min)",
        default=10,
        help="A session whose therapist and client have both been gone this long is ended and "
        "invoiced automatically.",
    )
    bookconnect_overdue_end_minutes = fields.Integer(
        "End overdue sessions after (min)",
        default=60,
        help="A session still open this long after its scheduled end is ended automatically.",
    )
    bookconnect_join_before_minutes = fields.Integer("Join button opens (min before)", default=10)
    bookconnect_reminder_hours = fields.Char(
        "Session reminders (h before)",
        default="24,1",
        help="Hours before the start to remind the client, comma separated.",
    )
    bookconnect_payment_reminders = fields.Boolean("Payment reminders", default=True)
    bookconnect_payment_reminder_days = fields.Char(
        "Payment reminders (days after due)", default="3,7,14"
    )

    @api.constrains(
        "bookconnect_auto_end_minutes",
        "bookconnect_overdue_end_minutes",
        "bookconnect_join_before_minutes",
    )
    def _check_bookconnect_delays(self):
        for company in self:
            if (
                company.bookconnect_auto_end_minutes < 1
                or company.bookconnect_overdue_end_minutes < 1
                or company.bookconnect_join_before_minutes < 0
            ):
                raise ValidationError(
                    _("Therapy settings: delays are whole minutes, at least 1 for ending calls.")
                )

    @api.constrains("bookconnect_reminder_hours", "bookconnect_payment_reminder_days")
    def _check_bookconnect_schedules(self):
        for company in self:
            for text in (
                company.bookconnect_reminder_hours,
                company.bookconnect_payment_reminder_days,
            ):
                try:
                    parse_positive_ints(text)
                except ValueError as exc:
                    raise ValidationError(
                        _(
                            "Therapy settings: schedules are whole numbers separated by commas, "
                            "e.g. 24,1 (%(error)s).",
                            error=exc,
                        )
                    ) from exc
