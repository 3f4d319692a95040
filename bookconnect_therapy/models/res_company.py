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

    # ------------------------------------------------------------------
    # Online booking
    # ------------------------------------------------------------------

    bookconnect_booking_slot_minutes = fields.Integer(
        "Online booking: session length (min)", default=50
    )
    bookconnect_booking_buffer_minutes = fields.Integer(
        "Online booking: buffer between sessions (min)",
        default=10,
        help="Kept free before and after every session and busy event of the therapist.",
    )
    bookconnect_booking_notice_hours = fields.Integer(
        "Online booking: minimum notice (h)",
        default=2,
        help="Clients cannot book a slot starting sooner than this.",
    )
    bookconnect_booking_horizon_days = fields.Integer(
        "Online booking: days ahead", default=14, help="How far ahead clients can book."
    )
    bookconnect_booking_new_clients = fields.Boolean(
        "Online booking: new clients",
        default=True,
        help="Visitors without an account can book: they give their name and email and get a "
        "client account.",
    )

    bookconnect_booking_confirm_minutes = fields.Integer(
        "Online booking: time to confirm (min)",
        default=30,
        help="A session booked online whose payment terms ask for a saved card or payment in "
        "advance is released, with no fee, when the client has not given it within this time. "
        "0 keeps such bookings until someone cancels them.",
    )

    @api.constrains(
        "bookconnect_booking_confirm_minutes",
        "bookconnect_booking_slot_minutes",
        "bookconnect_booking_buffer_minutes",
        "bookconnect_booking_notice_hours",
        "bookconnect_booking_horizon_days",
    )
    def _check_bookconnect_booking(self):
        for company in self:
            if not (
                5 <= company.bookconnect_booking_slot_minutes <= 720
                and 0 <= company.bookconnect_booking_buffer_minutes <= 240
                and company.bookconnect_booking_notice_hours >= 0
                and 1 <= company.bookconnect_booking_horizon_days <= 366
                and 0 <= company.bookconnect_booking_confirm_minutes <= 7 * 24 * 60
            ):
                raise ValidationError(
                    _(
                        "Online booking: sessions last 5 to 720 minutes, the buffer is 0 to 240 "
                        "minutes, the notice is not negative, clients book 1 to 366 days ahead "
                        "and have up to a week (10080 minutes) to confirm a booking."
                    )
                )
