from odoo import api, fields, models

from .bookconnect_metered_call import ROLES


class BookconnectCallSegment(models.Model):
    _name = "bookconnect.call.segment"
    _description = "Call connection segment"
    _order = "start, id"

    call_id = fields.Many2one(
        "bookconnect.metered.call", required=True, ondelete="cascade", index=True
    )
    session_id = fields.Many2one(related="call_id.session_id", store=True, index=True)
    therapist_id = fields.Many2one(related="call_id.therapist_id", store=True)
    company_id = fields.Many2one(related="call_id.company_id", store=True)
    role = fields.Selection(ROLES, required=True)
    partner_id = fields.Many2one("res.partner", "Participant")
    start = fields.Datetime(required=True)
    end = fields.Datetime(help="Empty while the participant is connected.")
    last_seen = fields.Datetime(help="Last sign of life of an open connection (heartbeat).")
    source = fields.Selection(
        [
            ("discuss", "Odoo Discuss call"),
            ("external", "External video service"),
            ("chat", "Odoo Discuss chat"),
        ],
        required=True,
    )
    external_event_id = fields.Char("Join event id", index="btree_not_null")
    end_event_id = fields.Char("Leave event id")
    rtc_session_id = fields.Integer(
        "Discuss call session",
        index="btree_not_null",
        help="Id of the Discuss call connection (deleted when it ends, so not a link).",
    )
    duration_seconds = fields.Integer("Seconds", compute="_compute_duration_seconds")

    _sql_constraints = [
        (
            "end_after_start",
            'CHECK("end" IS NULL OR "end" >= start)',
            "A connection cannot end before it starts.",
        ),
        (
            "rtc_session_unique",
            "UNIQUE(rtc_session_id)",
            "A Discuss call connection is measured once.",
        ),
    ]

    @api.depends("start", "end")
    def _compute_duration_seconds(self):
        for segment in self:
            if segment.start and segment.end:
                segment.duration_seconds = int((segment.end - segment.start).total_seconds())
            else:
                segment.duration_seconds = 0
