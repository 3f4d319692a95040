from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    bookconnect_policy_id = fields.Many2one(
        "bookconnect.billing.policy",
        "Default billing policy",
        help="Policy for this therapist's sessions when the client has none.",
    )
    bookconnect_bookable = fields.Boolean(
        "Takes online bookings",
        help="Clients see this therapist on the booking page (/book) and book their free "
        "working hours.",
    )
    bookconnect_booking_intro = fields.Text(
        "Booking page introduction",
        help="A few public words shown to clients on the booking page (approach, languages).",
    )
    # Bumped by every online booking of this therapist: the row write serialises concurrent
    # bookings (see bookconnect.booking._lock_therapist).
    bookconnect_booking_seq = fields.Integer(readonly=True, copy=False, groups="base.group_system")
