from odoo import api, fields, models


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
    # Readable by accountants who may not read sessions: the session filter and the origin.
    bookconnect_is_session = fields.Boolean(
        "Therapy session invoice", compute="_compute_bookconnect_is_session", store=True
    )
    bookconnect_charge_ids = fields.One2many(
        "bookconnect.session.charge", "move_id", "Session charges", readonly=True
    )
    bookconnect_charge_deferred = fields.Boolean(
        "Waiting for the next charge",
        copy=False,
        readonly=True,
        help="Below the smallest amount charged alone: added to the client's next card charge.",
    )

    @api.depends("bookconnect_session_id")
    def _compute_bookconnect_is_session(self):
        for move in self.sudo():
            move.bookconnect_is_session = bool(move.bookconnect_session_id)

    def _invoice_paid_hook(self):
        result = super()._invoice_paid_hook()
        charges = (
            self.env["bookconnect.session.charge"]
            .sudo()
            .search([("move_id", "in", self.ids), ("state", "=", "invoiced")])
        )
        charges.write({"state": "paid"})
        charges.filtered(lambda c: c.kind in ("booked", "usage")).session_id._mark_paid()
        return result

    def _bookconnect_hold_invoices(self):
        """The invoices among these that a session's card hold pays: the session's price and
        its fees, never a difference to an advance payment."""
        return self.filtered(
            lambda m: (
                m.move_type == "out_invoice"
                and m.sudo().bookconnect_charge_ids.filtered(
                    lambda c: c.kind not in ("difference", "refund")
                )
            )
        )

    def _bookconnect_post_and_send(self, notify_refunds=True):
        """Post session invoices and credit notes, then collect them: invoices are paid per
        the session's policy and told to the client by their outcome (the collector queues
        Odoo's own sending); what credit notes give back is refunded to the card it was
        paid with.

        :param notify_refunds: email the client about the credit notes.
        """
        self.filtered(lambda m: m.state == "draft").action_post()
        collector = self.env["bookconnect.collector"].sudo()
        collector._collect(self)
        if notify_refunds:
            collector._notify_refunds(self.filtered(lambda m: m.move_type == "out_refund"))

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
