from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # The practice's other settings are on the Therapy settings page, which practice
    # managers save too (bookconnect.therapy.settings); this one is for administrators.
    bookconnect_call_secret = fields.Char(
        related="company_id.bookconnect_call_secret", readonly=False, groups="base.group_system"
    )
