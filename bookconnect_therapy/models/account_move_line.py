from odoo import fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    bookconnect_charge_id = fields.Many2one(
        "bookconnect.session.charge",
        "Session charge",
        readonly=True,
        copy=False,
        index="btree_not_null",
    )
