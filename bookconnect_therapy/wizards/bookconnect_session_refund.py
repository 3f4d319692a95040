from odoo import api, fields, models


class BookconnectSessionRefund(models.TransientModel):
    _name = "bookconnect.session.refund"
    _description = "Refund a therapy session"

    session_id = fields.Many2one("bookconnect.therapy.session", required=True)
    invoice_id = fields.Many2one(related="session_id.invoice_id")
    currency_id = fields.Many2one(related="session_id.currency_id")
    amount = fields.Monetary(
        "Amount to refund",
        required=True,
        compute="_compute_amount",
        store=True,
        readonly=False,
        precompute=True,
    )
    reason = fields.Char(required=True)

    @api.depends("session_id")
    def _compute_amount(self):
        for wizard in self:
            wizard.amount = wizard.session_id.sudo().invoice_id.amount_total

    def action_refund(self):
        """Refund, then show the credit note to those who may read invoices; the others stay
        on the session, whose billing status tells what was refunded."""
        self.ensure_one()
        credit_note = self.session_id._refund(self.amount, self.reason).with_env(self.env)
        if not credit_note.has_access("read"):
            return {"type": "ir.actions.act_window_close"}
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "res_id": credit_note.id,
            "view_mode": "form",
        }
