from odoo import fields, models


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    bookconnect_session_id = fields.Many2one(
        "bookconnect.therapy.session",
        "Therapy session",
        index="btree_not_null",
        readonly=True,
        copy=False,
    )
    bookconnect_purpose = fields.Selection(
        [
            ("charge", "Session charge"),
            ("hold", "Card hold"),
            ("prepay", "Pre-payment"),
            ("topup", "Balance top-up"),
        ],
        readonly=True,
        copy=False,
    )
