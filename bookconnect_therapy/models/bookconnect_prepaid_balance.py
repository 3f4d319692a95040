from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_compare

from .bookconnect_topup_pack import topup_reference_prefix


class BookconnectPrepaidBalance(models.AbstractModel):
    """The clients' prepaid balance: invoices drawn from it, automatic top-ups of the saved
    card when it runs low, top-up bonuses, and the unused balance refunded.

    Top-ups go through the payment engine, which reports their outcome to
    :meth:`_on_payment_outcome`.
    """

    _name = "bookconnect.prepaid.balance"
    _description = "Therapy prepaid balance"

    # ------------------------------------------------------------------
    # The balance, from the ledger
    # ------------------------------------------------------------------

    @api.model
    def _credit_domain(self, partners, company):
        """Outstanding credits of ``partners`` in ``company``: unreconciled receivable lines
        on the credit side (advance payments, unused credit notes), as Odoo's invoice widget
        lists them."""
        return [
            ("company_id", "=", company.id),
            ("partner_id", "in", partners.commercial_partner_id.ids),
            ("account_id.account_type", "=", "asset_receivable"),
            ("parent_state", "=", "posted"),
            ("reconciled", "=", False),
            ("balance", "<", 0.0),
        ]

    @api.model
    def _balances(self, partners, company):
        """Read the prepaid balances of ``partners`` from the ledger now (not from a cache),
        in one query.

        :return: dict partner -> amount in the company currency.
        """
        self.env["account.move.line"].flush_model()
        totals = dict(
            self.env["account.move.line"]
            .sudo()
            ._read_group(
                self._credit_domain(partners, company),
                ["partner_id"],
                ["amount_residual:sum"],
            )
        )
        return {
            partner: company.currency_id.round(-totals.get(partner.commercial_partner_id, 0.0))
            for partner in partners
        }

    @api.model
    def _history(self, partner, company=None, limit=200):
        """The prepaid history of ``partner`` from the ledger, oldest first, with a running balance:
        top-ups and refunds (payments), sessions drawn (invoices), credit notes.

        :return: list of dicts (date, label, amount signed for the balance, balance).
        """
        partner.ensure_one()
        company = company or self.env.company
        lines = (
            self.env["account.move.line"]
            .sudo()
            .search(
                [
                    ("company_id", "=", company.id),
                    ("partner_id", "=", partner.commercial_partner_id.id),
                    ("account_id.account_type", "=", "asset_receivable"),
                    ("parent_state", "=", "posted"),
                ],
                order="date, id",
                limit=limit,
            )
        )
        history, running = [], 0.0
        for line in lines:
            move = line.move_id
            # A debit (an invoice) draws the balance down; a credit (a payment in, a credit
            # note) adds to it; a refund paid out is a debit too.
            amount = -line.balance
            running += amount
            if move.origin_payment_id:
                label = _("Refund") if amount < 0 else _("Top-up")
            elif move.move_type == "out_refund":
                label = _("Credit note %(name)s", name=move.name)
            elif move.bookconnect_session_id:
                label = move.invoice_line_ids[:1].name or move.name
            else:
                label = move.name
            history.append(
                {
                    "date": line.date,
                    "label": label,
                    "reference": move.name,
                    "amount": amount,
                    "balance": company.currency_id.round(running),
                }
            )
        return history

    # ------------------------------------------------------------------
    # Drawing, topping up, refunding
    # ------------------------------------------------------------------

    def _draw(self, invoices):
        """Pay invoices from the clients' prepaid balance: reconcile each with the client's
        outstanding credits, oldest first. What the balance does not cover stays open."""
        for invoice in invoices.sorted("id"):
            receivable = invoice._bookconnect_open_receivables()
            if not receivable:
                continue
            credits = self.env["account.move.line"].search(
                [
                    *self._credit_domain(invoice.partner_id, invoice.company_id),
                    ("account_id", "=", receivable.account_id.id),
                ],
                order="date, id",
            )
            if credits:
                (receivable | credits).reconcile()
            drawn = invoice.amount_total - invoice.amount_residual
            if drawn:
                invoice.bookconnect_session_id.message_post(
                    body=_(
                        "%(amount)s drawn from the prepaid balance.",
                        amount=invoice.currency_id.format(drawn),
                    )
                )

    def _auto_topup(self, partners, companies):
        """Charge the chosen pack to the saved card of clients whose balance fell below their
        threshold; once per drop: a refused top-up is not tried again until the client acts."""
        txs_values = []
        for company in companies:
            candidates = partners.filtered(
                lambda p: p.bookconnect_autotopup_pack_id and not p.bookconnect_autotopup_failed
            )
            balances = self._balances(candidates, company)
            clients = candidates.browse(
                [p.id for p in candidates if balances[p] < p.bookconnect_autotopup_threshold]
            )
            pending = (
                self.env["payment.transaction"]
                .search(
                    [
                        ("partner_id", "in", clients.ids),
                        ("bookconnect_purpose", "=", "topup"),
                        ("state", "in", ("draft", "pending")),
                    ]
                )
                .partner_id
            )
            for client in clients - pending:
                pack = client.bookconnect_autotopup_pack_id
                token = client._bookconnect_payment_token(company)
                if not token or token.provider_id._bookconnect_charge_refusal():
                    client.bookconnect_autotopup_failed = True
                    self._notify_topup_failure(client, _("no usable saved card"))
                    continue
                txs_values.append(
                    self.env["payment.transaction"]._bookconnect_prepare_offline_values(
                        self._name,
                        token,
                        pack.amount,
                        pack.currency_id,
                        partner=client,
                        purpose="topup",
                        reference=self.env["payment.transaction"]._compute_reference(
                            token.provider_id.code, prefix=topup_reference_prefix(client, pack)
                        ),
                    )
                )
        txs = self.env["payment.transaction"].create(txs_values)
        return txs._bookconnect_send()

    def _topup_bonus(self, tx, pack):
        """The pack's bonus, given as a credit note: an outstanding credit like the payment."""
        product = self.env.ref("bookconnect_therapy.product_topup_bonus")
        credit_note = self.env["account.move"].create(
            {
                "move_type": "out_refund",
                "partner_id": tx.partner_id.commercial_partner_id.id,
                "company_id": tx.company_id.id,
                "currency_id": pack.currency_id.id,
                "invoice_date": fields.Date.context_today(self),
                "ref": tx.reference,
                # No salesperson rather than whoever processed the payment (OdooBot).
                "invoice_user_id": False,
                "invoice_line_ids": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "name": _("Top-up bonus: %(pack)s", pack=pack.name),
                            "quantity": 1,
                            "price_unit": pack.bonus_amount,
                            "tax_ids": [Command.clear()],
                        }
                    )
                ],
            }
        )
        credit_note.action_post()
        return credit_note

    def _notify_topup_failure(self, partner, reason):
        template = self.env.ref("bookconnect_therapy.mail_template_topup_failed")
        template.with_context(bookconnect_reason=reason).send_mail_batch(
            partner.ids, email_layout_xmlid="mail.mail_notification_light"
        )

    def _refund(self, partner, company, amount=None):
        """Pay back unused prepaid balance through the provider the top-ups came with.

        :return: the refund transactions.
        :raise UserError: when there is no balance, or not enough was paid by card.
        """
        balance = self._balances(partner, company)[partner]
        currency = company.currency_id
        amount = currency.round(balance if amount is None else amount)
        if float_compare(amount, 0, precision_rounding=currency.rounding) <= 0:
            raise UserError(_("%(client)s has no prepaid balance to refund.", client=partner.name))
        if float_compare(amount, balance, precision_rounding=currency.rounding) > 0:
            raise UserError(
                _(
                    "At most %(amount)s of prepaid balance can be refunded.",
                    amount=currency.format(balance),
                )
            )
        topups = self.env["payment.transaction"].search(
            [
                ("partner_id", "child_of", partner.commercial_partner_id.id),
                ("bookconnect_purpose", "=", "topup"),
                ("state", "=", "done"),
                ("operation", "!=", "refund"),
                ("company_id", "=", company.id),
            ],
            order="id desc",
        )
        refundable = {}
        for tx in topups:
            refundable[tx] = currency.round(tx.amount - tx._bookconnect_refunded_amount())
        by_card = sum(refundable.values())
        # Check before any money moves: a refusal after a provider refund would lose track of it.
        if float_compare(amount, by_card, precision_rounding=currency.rounding) > 0:
            raise UserError(
                _(
                    "Only %(amount)s of the balance was paid by card and can be refunded that "
                    "way; refund the rest by bank transfer.",
                    amount=currency.format(by_card),
                )
            )
        refunds, left = self.env["payment.transaction"], amount
        for tx, available in refundable.items():
            if float_compare(left, 0, precision_rounding=currency.rounding) <= 0:
                break
            part = min(left, available)
            if part <= 0:
                continue
            refund = tx._send_refund_request(amount_to_refund=part)
            if refund.state == "done":
                refund._post_process()
            refunds |= refund
            left = currency.round(left - part)
        # The refund payments settle the advance payments they give back.
        lines = refunds.payment_id.move_id._bookconnect_open_receivables()
        credits = self.env["account.move.line"].search(
            self._credit_domain(partner, company), order="date desc, id desc"
        )
        if lines and credits:
            (lines | credits).reconcile()
        refunded = -sum(refunds.filtered(lambda t: t.state != "error").mapped("amount"))
        if refunded > 0 and partner.email:
            (partner | partner.commercial_partner_id).invalidate_recordset(["bookconnect_balance"])
            template = self.env.ref("bookconnect_therapy.mail_template_balance_refund")
            template.sudo().with_context(
                bookconnect_refund_amount=refunded, bookconnect_refund_currency_id=currency.id
            ).send_mail_batch(partner.ids, email_layout_xmlid="mail.mail_notification_light")
        return refunds

    @api.model
    def _on_payment_outcome(self, txs, operation="payment", error=None):
        """What the payment engine reports about automatic top-ups: booked when done (the
        bonus and the draws follow), the client told when refused."""
        if error or operation != "payment":
            return
        txs.filtered(lambda t: t.state == "done")._bookconnect_book()
        for tx in txs.filtered(lambda t: t.state in ("error", "cancel")):
            partner = tx.partner_id.commercial_partner_id
            partner.bookconnect_autotopup_failed = True
            self._notify_topup_failure(partner, tx._bookconnect_failure_reason(tx))
