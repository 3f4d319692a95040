import logging
from collections import defaultdict
from datetime import timedelta

import requests

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import float_compare, float_is_zero

_logger = logging.getLogger(__name__)

# Waits before retrying a charge whose outcome is unknown (timeout, network or Stripe error).
# The retry reuses the transaction, hence its idempotency key: Stripe answers with the first
# attempt's result instead of charging again.
RETRY_DELAYS = (timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=8))
# Stripe keeps an uncaptured payment about 7 days: holds older than this are placed again.
HOLD_RENEW_AFTER = timedelta(days=6)
SEND_ERRORS = (
    UserError,
    ValidationError,
    requests.exceptions.RequestException,
    ValueError,
    KeyError,
)


class BookconnectCollector(models.AbstractModel):
    """Collects what sessions cost through Odoo's payment API: off-session charges of saved
    cards, card holds captured for what was used, retries, failures and refunds.

    Every method is safe to run twice: transactions are looked up before new ones are made,
    and a retried request reuses its transaction (same reference, same idempotency key).
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
        (see :meth:`_send_by_outcome`).

        :return: the transactions created or used.
        """
        posted = invoices.filtered(lambda m: m.state == "posted")
        invoices = posted.filtered(
            lambda m: m.payment_state in ("not_paid", "partial") and m.bookconnect_session_id
        )
        txs = self.env["payment.transaction"]
        holds = {
            invoice: invoice.bookconnect_session_id._active_hold()
            for invoice in invoices._bookconnect_hold_invoices()
        }
        captured = self.env["account.move"]
        for invoice, hold in holds.items():
            if hold:
                used = self._capture_hold(hold, invoice)
                txs |= used
                if used.state == "done" or used.bookconnect_retry_at:
                    captured |= invoice
        prepaid = invoices.filtered(
            lambda m: m.bookconnect_session_id.policy_id.prepayment == "balance"
        )
        if prepaid:
            self._draw_from_balance(prepaid)
        to_charge = invoices.filtered(
            lambda m: (
                m.payment_state in ("not_paid", "partial")
                and m.bookconnect_session_id.policy_id.collection == "card"
                and (m not in prepaid or m.bookconnect_session_id.policy_id.overrun == "card")
            )
        )
        txs |= self._charge_invoices(to_charge)
        if prepaid:
            txs |= self._auto_topup(prepaid.commercial_partner_id, prepaid.company_id)
        self._send_by_outcome(posted, captured | to_charge)
        return txs

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
        queue = self.env.context.get("bookconnect_queue_payments")
        if queue:
            # Sweeps commit the invoices and their transactions first and send the payments
            # in another job: a sweep rolled back after the bank took the money would lose
            # the transaction, and a new one would charge again.
            now = fields.Datetime.now()
            for values in tx_values:
                values["bookconnect_retry_at"] = now
        txs = self.env["payment.transaction"].create(tx_values)
        txs.invoice_ids.filtered("bookconnect_charge_deferred").write(
            {"bookconnect_charge_deferred": False}
        )
        if queue:
            self.env.ref("bookconnect_therapy.ir_cron_retry_charges")._trigger()
        else:
            self._send(txs)
        return txs

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
        return {
            "provider_id": token.provider_id.id,
            "payment_method_id": token.payment_method_id.id,
            "token_id": token.id,
            "amount": amount,
            "currency_id": currency.id,
            "partner_id": invoices[0].commercial_partner_id.id,
            "operation": "offline",
            "invoice_ids": [Command.set(invoices.ids)],
            "bookconnect_session_id": invoices.sorted("id")[-1].bookconnect_session_id.id,
            "bookconnect_purpose": "charge",
        }

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

    def _send(self, txs):
        """Send transactions to their provider one by one, each in its own savepoint.

        A transaction whose outcome is unknown (timeout, connection or provider error) stays a
        draft and is queued for a retry with the same reference. Declined or refused ones
        notify the client. Successful ones are post-processed at once: payment, reconciliation,
        receipt.
        """
        txs = txs.with_env(self.env)  # carry this call's context (jobs defer some work)
        now = fields.Datetime.now()
        sent = self.env["payment.transaction"]
        for tx in txs:
            try:
                with self.env.cr.savepoint():
                    tx._send_payment_request()
            except SEND_ERRORS as exc:
                attempts = tx.bookconnect_attempts + 1
                _logger.info("transaction %s: attempt %s failed: %s", tx.reference, attempts, exc)
                if attempts > len(RETRY_DELAYS):
                    tx._set_error(
                        _("Gave up after %(count)s attempts: %(error)s", count=attempts, error=exc)
                    )
                else:
                    tx.write(
                        {
                            "bookconnect_attempts": attempts,
                            "bookconnect_retry_at": now + RETRY_DELAYS[attempts - 1],
                            "state_message": str(exc),
                        }
                    )
                    self._log_on_sessions(
                        tx,
                        _(
                            "The payment %(ref)s could not reach the bank (%(error)s); it will be "
                            "retried automatically.",
                            ref=tx.reference,
                            error=exc,
                        ),
                    )
                    continue
            else:
                sent |= tx
            if tx.state == "draft" and tx.provider_reference and tx.bookconnect_purpose != "hold":
                # An off-session payment the bank wants the client to authenticate cannot
                # complete without them: it ends here and the client pays online.
                tx._set_error(self.env["payment.transaction"]._bookconnect_failure_reason(tx))
        sent.filtered("bookconnect_retry_at").write({"bookconnect_retry_at": False})
        if self.env.context.get("bookconnect_defer_post_process"):
            if sent.filtered(lambda t: t.state == "done"):
                self.env.ref("payment.cron_post_process_payment_tx")._trigger()
        else:
            # Interactive: paid, reconciled and receipted at once. Jobs leave this to Odoo's
            # post-processing job, which payments completing trigger.
            txs.filtered(lambda t: t.state == "done")._post_process()
        failed = txs.filtered(lambda t: t.state in ("error", "cancel"))
        for tx in failed:
            reason = self.env["payment.transaction"]._bookconnect_failure_reason(tx)
            if tx.bookconnect_purpose == "hold":
                self._log_on_sessions(tx, _("The card hold was refused: %(reason)s", reason=reason))
            elif tx.bookconnect_purpose == "topup":
                partner = tx.partner_id.commercial_partner_id
                partner.bookconnect_autotopup_failed = True
                self._notify_topup_failure(partner, reason)
            else:
                self._notify_failure(tx.invoice_ids, reason)

    @api.model
    def _cron_retry(self, batch_size=100):
        """Send the queued payments, and again those whose outcome was unknown, with the same
        reference (so the same idempotency key)."""
        due = self.env["payment.transaction"].search(
            [
                ("bookconnect_purpose", "!=", False),
                ("state", "=", "draft"),
                ("bookconnect_retry_at", "!=", False),
                ("bookconnect_retry_at", "<=", fields.Datetime.now()),
            ],
            limit=batch_size + 1,
        )
        remaining = max(len(due) - batch_size, 0)
        due = due[:batch_size]
        self.with_context(bookconnect_defer_post_process=True)._send(due)
        # Card holds whose capture had an unknown outcome: captured again (or found captured).
        holds = self.env["payment.transaction"].search(
            [
                ("bookconnect_purpose", "=", "hold"),
                ("state", "=", "authorized"),
                ("bookconnect_retry_at", "!=", False),
                ("bookconnect_retry_at", "<=", fields.Datetime.now()),
            ],
            limit=batch_size,
        )
        for hold in holds:
            invoice = hold.invoice_ids.filtered(
                lambda m: m.state == "posted" and m.payment_state in ("not_paid", "partial")
            )[:1]
            if invoice:
                self._capture_hold(hold, invoice)
            else:
                hold.bookconnect_retry_at = False
        self.env["ir.cron"]._notify_progress(done=len(due) + len(holds), remaining=remaining)

    def _log_on_sessions(self, txs, body):
        sessions = txs.bookconnect_session_id | txs.invoice_ids.bookconnect_session_id
        for session in sessions:
            session.message_post(body=body)

    # ------------------------------------------------------------------
    # Prepaid balance
    # ------------------------------------------------------------------

    def _draw_from_balance(self, invoices):
        """Pay invoices from the clients' prepaid balance: reconcile each with the client's
        outstanding credits, oldest first. What the balance does not cover stays open."""
        for invoice in invoices.sorted("id"):
            receivable = invoice.line_ids.filtered(
                lambda line: (
                    line.account_id.account_type == "asset_receivable" and not line.reconciled
                )
            )
            if not receivable:
                continue
            credits = self.env["account.move.line"].search(
                [
                    *invoice.partner_id._bookconnect_credit_domain(invoice.company_id),
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
            balances = candidates._bookconnect_balances(company)
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
                    {
                        "provider_id": token.provider_id.id,
                        "payment_method_id": token.payment_method_id.id,
                        "token_id": token.id,
                        "reference": self.env["payment.transaction"]._compute_reference(
                            token.provider_id.code, prefix=f"TOPUP-{client.id}-{pack.id}"
                        ),
                        "amount": pack.amount,
                        "currency_id": pack.currency_id.id,
                        "partner_id": client.id,
                        "operation": "offline",
                        "bookconnect_purpose": "topup",
                    }
                )
        txs = self.env["payment.transaction"].create(txs_values)
        self._send(txs)
        return txs

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

    def _refund_balance(self, partner, company, amount=None):
        """Pay back unused prepaid balance through the provider the top-ups came with.

        :return: the refund transactions.
        :raise UserError: when there is no balance, or not enough was paid by card.
        """
        balance = partner._bookconnect_balances(company)[partner]
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
            already = -sum(
                tx.child_transaction_ids.filtered(
                    lambda t: t.operation == "refund" and t.state != "error"
                ).mapped("amount")
            )
            refundable[tx] = currency.round(tx.amount - already)
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
        lines = refunds.payment_id.move_id.line_ids.filtered(
            lambda line: line.account_id.account_type == "asset_receivable" and not line.reconciled
        )
        credits = self.env["account.move.line"].search(
            partner._bookconnect_credit_domain(company), order="date desc, id desc"
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

    # ------------------------------------------------------------------
    # Card holds
    # ------------------------------------------------------------------

    @api.model
    def _cron_place_holds(self, batch_size=100):
        """Place the holds that are due, and place again those about to expire."""
        now = fields.Datetime.now()
        horizon = now + timedelta(hours=24 * 6)
        sessions = self.env["bookconnect.therapy.session"].search(
            [
                ("state", "=", "scheduled"),
                ("policy_id.prepayment", "=", "hold"),
                ("start", ">", now),
                ("start", "<=", horizon),
            ],
            order="start",
        )
        due = sessions.filtered(
            lambda s: s.start - timedelta(hours=s.policy_id.hold_hours_before) <= now
        )
        renew, place = (
            self.env["bookconnect.therapy.session"],
            self.env["bookconnect.therapy.session"],
        )
        for session in due:
            hold = session._active_hold()
            if not hold:
                place |= session
            elif hold.state == "authorized" and hold.create_date < now - HOLD_RENEW_AFTER:
                renew |= session
        for session in renew:
            old = session._active_hold()
            self._void(old)
            session.message_post(body=_("The card hold was renewed before it expired."))
        place |= renew
        placed = self._place_holds(place[:batch_size])
        self.env["ir.cron"]._notify_progress(
            done=len(placed), remaining=max(len(place) - batch_size, 0)
        )

    def _place_holds(self, sessions):
        """Reserve the expected amount (booked duration at the policy's price) on the cards."""
        values = []
        for session in sessions:
            token = session.partner_id._bookconnect_payment_token(session.company_id)
            refusal = (
                token.provider_id._bookconnect_charge_refusal() if token else _("no saved card")
            )
            amount = session.estimated_amount
            if refusal or float_is_zero(amount, precision_rounding=session.currency_id.rounding):
                if refusal:
                    session.message_post(
                        body=_("No card hold could be placed: %(reason)s.", reason=refusal)
                    )
                continue
            reference = self.env["payment.transaction"]._compute_reference(
                token.provider_id.code, prefix=f"HOLD-{session.name}"
            )
            values.append(
                {
                    "provider_id": token.provider_id.id,
                    "payment_method_id": token.payment_method_id.id,
                    "token_id": token.id,
                    "reference": reference,
                    "amount": amount,
                    "currency_id": session.currency_id.id,
                    "partner_id": session.partner_id.commercial_partner_id.id,
                    "operation": "offline",
                    "bookconnect_session_id": session.id,
                    "bookconnect_purpose": "hold",
                }
            )
        txs = self.env["payment.transaction"].create(values)
        self._send(txs)
        held = txs.filtered(lambda t: t.state == "authorized")
        for tx in held:
            tx.bookconnect_session_id.message_post(
                body=_(
                    "%(amount)s is held on the client's card until the session ends.",
                    amount=tx.currency_id.format(tx.amount),
                )
            )
        held.bookconnect_session_id._send_client_email(
            "bookconnect_therapy.mail_template_hold_placed"
        )
        return txs

    def _capture_hold(self, hold, invoice):
        """Capture from a hold what the invoice says: less than held (the rest is released),
        all of it (then the difference is charged), or nothing (the hold is voided).

        A capture that fails may still have gone through (its answer lost): Stripe is asked
        before the invoice is charged another way, and while it cannot tell, the invoice stays
        with the hold and the capture is retried, so that the card is never charged twice.
        """
        due = invoice.amount_residual
        hold.invoice_ids = [Command.link(invoice.id)]
        if float_is_zero(due, precision_rounding=invoice.currency_id.rounding):
            self._void(hold)
            return hold
        amount = min(due, hold.amount)
        try:
            with self.env.cr.savepoint():
                hold._send_capture_request(amount_to_capture=amount)
        except SEND_ERRORS as exc:
            _logger.info("capture of %s failed: %s", hold.reference, exc)
            try:
                with self.env.cr.savepoint():
                    captured = hold._bookconnect_capture_outcome()
            except SEND_ERRORS as lookup_exc:
                _logger.info("capture of %s: outcome unknown: %s", hold.reference, lookup_exc)
                self._queue_capture_retry(hold, exc)
                return hold
            if not captured:
                self._log_on_sessions(
                    hold,
                    _(
                        "The card hold could not be captured (%(error)s): the invoice is "
                        "charged instead.",
                        error=exc,
                    ),
                )
                hold.invoice_ids = [Command.unlink(invoice.id)]
                return hold
        if hold.bookconnect_retry_at:
            hold.bookconnect_retry_at = False
        if hold.state == "done":
            hold._post_process()
            session = invoice.bookconnect_session_id
            released = (
                hold.bookconnect_held_amount - hold.amount if hold.bookconnect_held_amount else 0
            )
            session.message_post(
                body=_(
                    "%(captured)s captured from the card hold%(released)s.",
                    captured=hold.currency_id.format(hold.amount),
                    released=_("; %(amount)s released", amount=hold.currency_id.format(released))
                    if released > 0
                    else "",
                )
            )
        return hold

    def _queue_capture_retry(self, hold, error):
        """Stripe could not say whether the hold was captured: try again later, the invoice
        staying with the hold (nothing else charges it meanwhile)."""
        attempts = min(hold.bookconnect_attempts + 1, len(RETRY_DELAYS))
        hold.write(
            {
                "bookconnect_attempts": attempts,
                "bookconnect_retry_at": fields.Datetime.now() + RETRY_DELAYS[attempts - 1],
                "state_message": str(error),
            }
        )
        self._log_on_sessions(
            hold,
            _(
                "The card hold could not be captured (%(error)s); it will be tried again "
                "automatically.",
                error=error,
            ),
        )

    def _void(self, holds):
        for hold in holds.filtered(lambda t: t.state == "authorized"):
            try:
                with self.env.cr.savepoint():
                    hold._send_void_request()
            except SEND_ERRORS as exc:
                _logger.info("void of %s failed: %s", hold.reference, exc)
                self._log_on_sessions(
                    hold, _("The card hold could not be released (%(error)s).", error=exc)
                )
        for hold in holds.filtered(lambda t: t.state == "draft"):
            hold._set_canceled()

    # ------------------------------------------------------------------
    # Refunds
    # ------------------------------------------------------------------

    def _refund_payments(self, credit_note):
        """Give back what a posted credit note credits: what the client paid by card for the
        invoice it refunds goes back through the provider; an invoice not paid yet is settled
        by the credit note instead."""
        invoice = credit_note.reversed_entry_id
        currency = invoice.currency_id
        amount = credit_note.amount_total
        paid_by_card = self.env["payment.transaction"].search(
            [
                ("invoice_ids", "in", invoice.ids),
                ("state", "=", "done"),
                ("operation", "!=", "refund"),
                ("amount", ">", 0),
            ]
        )
        to_refund = min(amount, currency.round(invoice.amount_total - invoice.amount_residual))
        for tx in paid_by_card:
            if float_compare(to_refund, 0, precision_rounding=currency.rounding) <= 0:
                break
            already = -sum(
                tx.child_transaction_ids.filtered(
                    lambda t: t.operation == "refund" and t.state != "error"
                ).mapped("amount")
            )
            part = min(to_refund, currency.round(tx.amount - already))
            if part <= 0:
                continue
            refund_tx = tx.with_context(
                bookconnect_refund_invoice_ids=credit_note.ids
            )._send_refund_request(amount_to_refund=part)
            if refund_tx.state == "done":
                refund_tx._post_process()
            to_refund -= part
        if credit_note.payment_state in ("not_paid", "partial") and invoice.payment_state in (
            "not_paid",
            "partial",
        ):
            # Nothing was paid for this part: the credit note settles the open invoice.
            (credit_note.line_ids | invoice.line_ids).filtered(
                lambda line: (
                    line.account_id.account_type == "asset_receivable" and not line.reconciled
                )
            ).reconcile()

    def _notify_refunds(self, credit_notes):
        """Tell the clients what was refunded, why and where the money goes (card or credit),
        with every money line of the session."""
        credit_notes = credit_notes.filtered(lambda m: m.state == "posted" and m.partner_id.email)
        if credit_notes:
            template = self.env.ref("bookconnect_therapy.mail_template_session_refund")
            template.sudo().send_mail_batch(
                credit_notes.ids, email_layout_xmlid="mail.mail_notification_light"
            )
