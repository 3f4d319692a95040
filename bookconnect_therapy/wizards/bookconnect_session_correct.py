from odoo import fields, models


class BookconnectSessionCorrect(models.TransientModel):
    _name = "bookconnect.session.correct"
    _description = "Correct a session's measured time"

    session_id = fields.Many2one("bookconnect.therapy.session", required=True)
    measured_minutes = fields.Float(related="session_id.measured_minutes")
    minutes = fields.Integer("Billable minutes", required=True)
    reason = fields.Char(required=True)

    def action_apply(self):
        self.ensure_one()
        self.session_id._set_correction(self.minutes, self.reason)
        return {"type": "ir.actions.act_window_close"}
