from odoo import fields, models
from odoo.tools import SQL

SESSION_KINDS = [
    ("session", "Session"),
    ("late_cancel", "Late cancellation fee"),
    ("no_show", "No-show fee"),
    ("difference", "Difference to the pre-payment"),
]


class AccountMove(models.Model):
    _inherit = "account.move"

    bookconnect_session_id = fields.Many2one(
        "bookconnect.therapy.session",
        "Therapy session",
        index="btree_not_null",
        copy=False,
        readonly=True,
        groups="bookconnect_therapy.group_therapist",
    )
    bookconnect_kind = fields.Selection(SESSION_KINDS, "Session charge", copy=False, readonly=True)
    bookconnect_charge_deferred = fields.Boolean(
        "Waiting for the next charge",
        copy=False,
        readonly=True,
        help="Below the smallest amount charged alone: added to the client's next card charge.",
    )

    def init(self):
        result = super().init()
        # One live invoice per session and kind, whatever the number of workers or retries.
        self.env.cr.execute(
            SQL(
                """
                CREATE UNIQUE INDEX IF NOT EXISTS account_move_bookconnect_session_kind_uniq
                    ON account_move (bookconnect_session_id, bookconnect_kind)
                 WHERE bookconnect_session_id IS NOT NULL
                   AND move_type = 'out_invoice'
                   AND state != 'cancel'
                """
            )
        )
        return result

    def _invoice_paid_hook(self):
        result = super()._invoice_paid_hook()
        sessions = (
            self.sudo().filtered(lambda m: m.bookconnect_kind == "session").bookconnect_session_id
        )
        sessions._mark_paid()
        return result

    def _bookconnect_send(self):
        """Queue the invoices for Odoo's own sending (email with the portal link and PDF),
        done in the background by its cron in batches."""
        if not self:
            return
        author = self.env.user
        self.sudo().write(
            {
                "sending_data": {
                    "author_user_id": author.id,
                    "author_partner_id": author.partner_id.id,
                }
            }
        )
        self.env.ref("account.ir_cron_account_move_send")._trigger()

    def _bookconnect_open_receivables(self):
        """The receivable lines of these entries not reconciled yet: what they still owe, or
        the credit they still give."""
        return self.line_ids.filtered(
            lambda line: line.account_id.account_type == "asset_receivable" and not line.reconciled
        )
