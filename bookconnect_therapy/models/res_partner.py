from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    bookconnect_policy_id = fields.Many2one(
        "bookconnect.billing.policy",
        "Therapy billing policy",
        help="Policy for this client's sessions; empty: the therapist's or the practice's.",
    )
    bookconnect_session_ids = fields.One2many(
        "bookconnect.therapy.session", "partner_id", "Therapy sessions"
    )
    bookconnect_session_count = fields.Integer(compute="_compute_bookconnect_session_count")

    def _compute_bookconnect_session_count(self):
        counts = dict(
            self.env["bookconnect.therapy.session"]._read_group(
                [("partner_id", "in", self.ids)], ["partner_id"], ["__count"]
            )
        )
        for partner in self:
            partner.bookconnect_session_count = counts.get(partner, 0)
