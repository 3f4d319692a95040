import logging
from collections import defaultdict

from odoo import Command, _, api, models
from odoo.tools import float_compare

_logger = logging.getLogger(__name__)


class BookconnectCollector(models.AbstractModel):
    """Collects what sessions cost, per policy: card holds captured for what was used
    (:class:`bookconnect.card.hold` places them), the prepaid balance drawn on
    (:class:`bookconnect.prepaid.balance`), off-session charges of saved cards (grouped per
    client, held back below the smallest charge), failures and refunds.

    Every method is safe to run twice: transactions are looked up before new ones are made,
    and a retried request reuses its transaction (same reference, same idempotency key).
    Requests go through the payment engine (``payment.transaction._bookconnect_send``), which
    reports their outcome to :meth:`_on_payment_outcome`.
    """

    _name = "bookconnect.collector"
    _description = "Therapy payment collection"

    # ------------------------------------------------------------------
    # Charging posted invoices
    # ------------------------------------------------------------------

    def _collect(self, invoices):
        """Collect posted session invoices per their policy: capture the session's hold, draw
        on the prepaid balance, or charge the client's saved card; invoices of portal-payment
        policies wait for the client. The client gets one email per invoice, for its outcome
        (see :meth:`_send_by_outcome`). Posted credit notes among them are paid back to the
        cards that paid the invoices they reverse (:meth:`_refund_credit_notes`).

        :return: the transactions created or used.
        """
        credit_notes = invoices.filtered(
            lambda m: m.move_type == "out_refund" and m.state == "posted" and m.reversed_entry_id
        )
        refunded = self._refund_credit_notes(credit_notes)
        invoices -= credit_notes
        posted = invoices.filtered(lambda m: m.state == "posted")
        invoices = posted.filtered(
            lambda m: m.payment_state in ("not_paid", "partial") and m.bookconnect_session_id
        )
        txs = self.env["payment.transaction"]
        holds = {
            invoice: self.env["bookconnect.card.hold"]._active(invoice.bookconnect_session_id)
            for invoice in invoices._bookconnect_hold_invoices()
        }
        captured = self.env["account.move"]
        for invoice, hold in holds.items():
            if hold:
                used = self._capture_hold(hold, invoice)
                txs |= used
                if used.state == "done" or used._bookconnect_queued("capture"):
                    captured |= invoice
        prepaid = invoices.filtered(
            lambda m: m.bookconnect_session_id.policy_id.prepayment == "balance"
        )
        balance = self.env["bookconnect.prepaid.balance"]
        if prepaid:
            balance._draw(prepaid)
        to_charge = invoices.filtered(
            lambda m: (
                m.payment_state in ("not_paid", "partial")
                and m.bookconnect_session_id.policy_id.collection == "card"
                and (m not in prepaid or m.bookconnect_session_id.policy_id.overrun == "card")
            )
        )
        txs |= self._charge_invoices(to_charge)
        if prepaid:
            txs |= balance._auto_topup(prepaid.commercial_partner_id, prepaid.company_id)
        self._send_by_outcome(posted, captured | to_charge)
        return txs | refunded

    def _send_by_outcome(self, invoices, by_card):
        """Tell the client about posted invoices once, for what became of them.

        Invoices charged (or being charged) to a card, or taken from a card hold, are told by
        the payment itself once its outcome is known: the receipt, or the failure with the
        link to pay online (no saved card counts as a failure, told at once). Every other
        invoice (to pay online, paid from the prepaid balance, or waiting to be added to the
        next card payment) goes out through Odoo's invoice sending, with its portal link.

        :param by_card: the invoices among ``invoices`` that a card payment took charge of.
        """
        waiting = by_card.filtered("bookconnect_charge_deferred")
        (invoices.filtered(lambda m: m.state == "posted") - (by_card - waiting))._bookconnect_send()

    def _charge_invoices(self, invoices):
        """Charge open invoices to the clients' saved cards, one transaction per client.

        Amounts below the provider's minimum or the policy's smallest charge wait, flagged,
        for the client's next charge. A client without a usable card, or a provider that
        must not charge unattended, gets the invoice's payment link instead.
        """
        if not invoices:
            return self.env["payment.transaction"]
        partners = invoices.partner_id.commercial_partner_id
        waiting = self.env["account.move"].search(
            [
                ("bookconnect_charge_deferred", "=", True),
                ("commercial_partner_id", "in", partners.ids),
                ("state", "=", "posted"),
                ("payment_state", "in", ("not_paid", "partial")),
            ]
        )
        groups = defaultdict(lambda: self.env["account.move"])
        for invoice in invoices | waiting:
            key = (invoice.commercial_partner_id, invoice.company_id, invoice.currency_id)
            groups[key] |= invoice
        busy = self._invoices_being_paid(invoices | waiting)
        tokens = {
            company: partners._bookconnect_payment_tokens(company)
            for company in (invoices | waiting).company_id
        }
        tx_values, failures, deferred = [], defaultdict(list), self.env["account.move"]
        for (partner, company, currency), candidates in groups.items():
            group = candidates - busy
            if not group:
                continue
            token = tokens[company].get(partner)
            if not token:
                failures[_("no saved card")].append(group)
                continue
            refusal = token.provider_id._bookconnect_charge_refusal()
            if refusal:
                failures[refusal].append(group)
                continue
            total = currency.round(sum(group.mapped("amount_residual")))
            floor = max(
                [
                    *group.bookconnect_session_id.policy_id.mapped("charge_floor"),
                    token.provider_id._bookconnect_minimum_charge(currency),
                ]
            )
            if float_compare(total, floor, precision_rounding=currency.rounding) < 0:
                deferred |= group
                continue
            tx_values.append(self._prepare_charge_values(token, group, total, currency))
        if deferred:
            self._defer(deferred)
        for reason, groups_ in failures.items():
            self._notify_failure(self.env["account.move"].concat(*groups_), reason)
        if not tx_values:
            return self.env["payment.transaction"]
        self._assign_references(tx_values)
        txs = self.env["payment.transaction"].create(tx_values)
        txs.invoice_ids.filtered("bookconnect_charge_deferred").write(
            {"bookconnect_charge_deferred": False}
        )
        return txs._bookconnect_send()

    def _assign_references(self, tx_values):
        """Name the charges after their invoices, as Odoo does, checking in one query that
        the names are free (a second charge of an invoice gets Odoo's numbered reference)."""
        Transaction = self.env["payment.transaction"]
        names = {}
        for values in tx_values:
            invoices = self.env["account.move"].browse(values["invoice_ids"][0][2])
            names[id(values)] = ",".join(invoices.mapped("name"))
        taken = set(
            Transaction.search([("reference", "in", list(names.values()))]).mapped("reference")
        )
        for values in tx_values:
            name = names[id(values)]
            if name in taken or len(name) > 200:
                provider = self.env["payment.provider"].browse(values["provider_id"])
                name = Transaction._compute_reference(
                    provider.code, invoice_ids=values["invoice_ids"]
                )
            taken.add(name)
            values["reference"] = name

    def _prepare_charge_values(self, token, invoices, amount, currency):
        return self.env["payment.transaction"]._bookconnect_prepare_offline_values(
            self._name,
            token,
            amount,
            currency,
            partner=invoices[0].commercial_partner_id,
            purpose="charge",
            invoice_ids=[Command.set(invoices.ids)],
            bookconnect_session_id=invoices.sorted("id")[-1].bookconnect_session_id.id,
        )

    def _invoices_being_paid(self, invoices):
        """Invoices a transaction is already working on (sent, waiting for a retry or for the
        bank): charging them again could take the money twice."""
        pending = self.env["payment.transaction"].search(
            [
                ("invoice_ids", "in", invoices.ids),
                ("state", "in", ("draft", "pending", "authorized")),
                ("operation", "!=", "refund"),
            ]
        )
        return pending.invoice_ids & invoices

    def _defer(self, invoices):
        invoices.write({"bookconnect_charge_deferred": True})
        for session in invoices.bookconnect_session_id:
            session.message_post(
                body=_(
                    "The amount is below the smallest charge: it will be added to the "
                    "client's next charge."
                )
            )

    # ------------------------------------------------------------------
    # Outcomes the payment engine reports
    # ------------------------------------------------------------------

    @api.model
    def _on_payment_outcome(self, txs, operation="payment", error=None):
        """What the payment engine reports about the charges this service made, and the
        captures of card holds it asked for.

        :param str operation: what was sent (``payment``, ``capture``).
        :param error: when the outcome is unknown (the engine tries again): why.
        """
        if operation == "void" or (operation == "capture" and error):
            # The hold's own news: released, or its capture tried again.
            return self.env["bookconnect.card.hold"]._on_payment_outcome(txs, operation, error)
        if error:
            for tx in txs:
                tx._bookconnect_log_on_sessions(
                    _(
                        "The refund of %(ref)s could not reach the bank (%(error)s); it will be "
                        "retried automatically.",
                        ref=tx.reference,
                        error=error,
                    )
                    if operation == "refund"
                    else _(
                        "The payment %(ref)s could not reach the bank (%(error)s); it will be "
                        "retried automatically.",
                        ref=tx.reference,
                        error=error,
                    )
                )
            return
        if operation == "capture":
            # What a hold did not cover, or all of it when it could not be captured after all
            # (the provider says so), is charged as if there were no hold.
            refused = self.env["bookconnect.card.hold"]._on_capture_outcome(txs)
            uncovered = txs.filtered(lambda t: t.state == "done").invoice_ids.filtered(
                lambda m: m.state == "posted" and m.payment_state in ("not_paid", "partial")
            )
            self._charge_invoices(
                (refused | uncovered).filtered(
                    lambda m: m.bookconnect_session_id.policy_id.collection == "card"
                )
            )
        elif operation == "payment":
            self._on_charge_outcome(txs)
        elif operation == "refund":
            txs.child_transaction_ids.filtered(
                lambda t: t.operation == "refund" and t.state == "done" and not t.is_post_processed
            )._bookconnect_book()

    def _on_charge_outcome(self, txs):
        for tx in txs:
            if tx._bookconnect_outcome() == "requires_action":
                # An off-session payment the bank wants the client to authenticate cannot
                # complete without them: it ends here and the client pays online.
                tx._set_error(tx._bookconnect_failure_reason(tx))
        txs.filtered(lambda t: t.state == "done")._bookconnect_book()
        for tx in txs.filtered(lambda t: t.state in ("error", "cancel")):
            self._notify_failure(tx.invoice_ids, tx._bookconnect_failure_reason(tx))

    def _notify_failure(self, invoices, reason):
        """Tell the clients their invoice is still open, why, and where to pay it; say it on
        the sessions too."""
        invoices = invoices.filtered(lambda m: m.payment_state in ("not_paid", "partial"))
        if not invoices:
            return
        for session in invoices.bookconnect_session_id:
            session.message_post(
                body=_(
                    "The invoice could not be charged automatically: %(reason)s. The client "
                    "was sent a link to pay online.",
                    reason=reason,
                )
            )
        template = self.env.ref("bookconnect_therapy.mail_template_payment_failed")
        template.with_context(bookconnect_reason=reason).send_mail_batch(
            invoices.ids, email_layout_xmlid="mail.mail_notification_light"
        )
        # This email is the invoice's: Odoo's own sending is not needed on top of it.
        invoices.filtered(lambda m: not m.is_move_sent).write({"is_move_sent": True})

    def _capture_hold(self, hold, invoice):
        """Take ``invoice`` from the session's card hold (:meth:`bookconnect.card.hold._capture`);
        the capture's outcome comes back here, to charge the invoice another way when the hold
        cannot be captured.

        :return: the hold.
        """
        return self.env["bookconnect.card.hold"]._capture(hold, invoice, handler=self._name)

    # ------------------------------------------------------------------
    # Refunds
    # ------------------------------------------------------------------

    def _refund_credit_notes(self, credit_notes):
        """Give back what posted credit notes credit: what is still owed on the invoice they
        reverse is settled by the credit note, and the rest is paid back to the card payments of
        that invoice, up to what they took, through the payment engine. Safe to run twice: a
        credit note already refunded, or being refunded, is not refunded again.

        :return: the card transactions refunds were asked of.
        """
        Transaction = self.env["payment.transaction"]
        asked = Transaction
        for credit_note in credit_notes:
            invoice = credit_note.reversed_entry_id
            currency = credit_note.currency_id
            paid_by_card = Transaction.search(
                [
                    ("invoice_ids", "in", invoice.ids),
                    ("state", "=", "done"),
                    ("operation", "!=", "refund"),
                    ("amount", ">", 0),
                ]
            )
            if invoice.payment_state in ("not_paid", "partial"):
                # What is still owed is settled by the credit note: only what was paid goes back.
                (credit_note | invoice)._bookconnect_open_receivables().reconcile()
            busy = paid_by_card._bookconnect_queued(
                "refund", detail=f"invoice_ids=[{credit_note.id}]"
            )
            if busy or any(tx._bookconnect_refunded_amount(credit_note) for tx in paid_by_card):
                continue
            to_refund = credit_note.amount_residual
            for tx in paid_by_card:
                if float_compare(to_refund, 0, precision_rounding=currency.rounding) <= 0:
                    break
                part = min(to_refund, currency.round(tx.amount - tx._bookconnect_refunded_amount()))
                if part <= 0:
                    continue
                tx._bookconnect_send(
                    "refund", part, invoice_ids=credit_note.ids, handler=self._name
                )
                asked |= tx
                to_refund = currency.round(to_refund - part)
        return asked

    def _notify_refunds(self, credit_notes):
        """Tell the clients what was refunded, why and where the money goes (card or credit),
        with every money line of the session."""
        credit_notes = credit_notes.filtered(lambda m: m.state == "posted" and m.partner_id.email)
        if credit_notes:
            template = self.env.ref("bookconnect_therapy.mail_template_session_refund")
            template.sudo().send_mail_batch(
                credit_notes.ids, email_layout_xmlid="mail.mail_notification_light"
            )
