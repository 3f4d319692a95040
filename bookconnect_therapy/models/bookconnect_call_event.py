from odoo import fields, models

from .bookconnect_metered_call import ROLES


class BookconnectCallEvent(models.Model):
    """A join or leave event posted by an external video service, kept as received.

    The external segments are derived from this log, so replays and late arrivals give the
    same result as events received once and in order.
    """

    _name = "bookconnect.call.event"
    _description = "External call event"
    _order = "at, id"

    call_id = fields.Many2one(
        "bookconnect.metered.call", required=True, ondelete="cascade", index=True
    )
    session_id = fields.Many2one(related="call_id.session_id", store=True)
    therapist_id = fields.Many2one(related="call_id.therapist_id", store=True)
    company_id = fields.Many2one(related="call_id.company_id", store=True)
    event_uid = fields.Char("Event id", required=True)
    kind = fields.Selection([("joined", "Joined"), ("left", "Left")], required=True)
    role = fields.Selection(ROLES, required=True)
    at = fields.Datetime(required=True)

    _sql_constraints = [
        (
            "event_unique",
            "UNIQUE(call_id, event_uid)",
            "An event is recorded once per call.",
        ),
    ]
