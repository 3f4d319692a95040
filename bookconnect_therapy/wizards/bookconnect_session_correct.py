from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..models.bookconnect_therapy_session import BILLED_STATES, BILLING_WRITE


class BookconnectSessionCorrect(models.TransientModel):
    _name = "bookconnect.session.correct"
    _description = "Correct a session's measured time"

    session_id = fields.Many2one("bookconnect.therapy.session", required=True)
    measured_minutes = fields.Float(related="session_id.measured_minutes")
    minutes = fields.Integer("Billable minutes", required=True)
    reason = fields.Char(required=True)

    def action_apply(self):
        self.ensure_one()
        self._correct(self.session_id, self.minutes, self.reason)
        return {"type": "ir.actions.act_window_close"}

    @api.model
    def _correct(self, sessions, minutes, reason):
        """Record a therapist's correction of the measured time, with who and why, and price
        an ended session again: billed if it now costs something.

        :param sessions: the sessions, in the environment of the therapist correcting them."""
        sessions._check_access_therapist()
        user = sessions.env.user
        if minutes < 0:
            raise ValidationError(_("Corrected minutes cannot be negative."))
        if not (reason or "").strip():
            raise ValidationError(_("Say why the measured time is corrected."))
        for session in sessions:
            if session.state in BILLED_STATES:
                raise UserError(
                    _(
                        "Session %(name)s is invoiced: refund it instead of correcting the time.",
                        name=session.name,
                    )
                )
            before = (
                session.corrected_minutes
                if session.corrected_by_id
                else round(session.measured_seconds / 60, 1)
            )
            session.sudo().with_context(**{BILLING_WRITE: True}).write(
                {
                    "corrected_minutes": minutes,
                    "correction_reason": reason.strip(),
                    "corrected_by_id": user.id,
                }
            )
            if session.state == "done":
                # Priced again; billed through its usage charge if it now costs something.
                Charge = self.env["bookconnect.session.charge"].sudo()
                done = session.sudo().with_context(**{BILLING_WRITE: True})
                done.write(Charge._prepare_billing_values(done)[done])
                if done.amount > 0 and "usage" not in done.charge_ids.mapped("kind"):
                    done._invoice_usage()
            session.message_post(
                body=_(
                    "%(user)s corrected the measured time from %(before)s to %(after)s min: "
                    "%(reason)s",
                    user=user.name,
                    before=before,
                    after=minutes,
                    reason=reason.strip(),
                ),
                author_id=user.partner_id.id,
            )
