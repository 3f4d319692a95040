from odoo import fields, models


class BookconnectFeeWaive(models.TransientModel):
    _name = "bookconnect.fee.waive"
    _description = "Waive a late cancellation or no-show fee"

    session_id = fields.Many2one("bookconnect.therapy.session", required=True)
    fee_amount = fields.Monetary(related="session_id.fee_charge_id.amount")
    currency_id = fields.Many2one(related="session_id.currency_id")
    reason = fields.Char(required=True)

    def action_waive(self):
        self.ensure_one()
        self.session_id._waive_fee(self.reason)
        return {"type": "ir.actions.act_window_close"}
