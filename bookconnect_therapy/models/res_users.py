from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    bookconnect_policy_id = fields.Many2one(
        "bookconnect.billing.policy",
        "Default billing policy",
        help="Policy for this therapist's sessions when the client has none.",
    )
