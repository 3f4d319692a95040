from datetime import timedelta

from odoo import _, api, fields, models
from odoo.tools import format_amount, format_date

from .bookconnect_therapy_session import OPEN_STATES


class BookconnectClientMoney(models.AbstractModel):
    """The client's view of a session's money: what it cost them or gave back, each line in
    plain words, read from the session's charges, invoices, credit notes and card holds."""

    _name = "bookconnect.client.money"
    _description = "Therapy money, as the client reads it"

    @api.model
    def _lines(self, session, tz=None):
        """Everything this session costs the client or gives back to them, as they should read
        it: its invoices and credit notes, its card holds, and a fee in review or waived. The
        portal pages and the client's emails all show these lines.

        :param tz: the reader's time zone (default: the client's).
        :return: list of dicts, oldest first, each with ``kind`` (``invoice``,
            ``credit_note``, ``hold`` or ``fee``), ``label``, ``amount`` (signed: positive for
            what the client pays or owes, or what a hold reserves; negative for what they get
            back), ``currency``, ``date`` (a date, in ``tz``), ``state`` (a key: ``paid``,
            ``to_pay``, ``being_paid``, ``deferred``, ``reversed``, ``refunded``, ``credited``,
            ``held``, ``captured``, ``released``, ``refused``, ``in_review``, ``waived``,
            ``charged``), ``state_label`` (in words), ``why``, ``document`` (the invoice or
            credit note number, or ``""``), ``url`` (its portal link, or ``""``) and ``tone`` (a
            Bootstrap text-bg class for the state).
        """
        session = session.sudo()
        tz = tz or session._client_tz()
        local = session.with_context(tz=tz)

        def day(value):
            return fields.Datetime.context_timestamp(local, value).date() if value else False

        lines = []
        moves = session.invoice_ids.filtered(
            lambda m: m.state == "posted" and m.move_type in ("out_invoice", "out_refund")
        )
        txs = (
            self.env["payment.transaction"].sudo().search([("invoice_ids", "in", moves.ids)])
            if moves
            else self.env["payment.transaction"]
        )
        for move in moves.sorted("id"):
            moved = txs.filtered(lambda tx, move=move: move in tx.invoice_ids)
            line = {
                "currency": move.currency_id,
                "date": move.invoice_date or move.date,
                "document": move.name,
                "url": move.get_portal_url(),
            }
            if move.move_type == "out_invoice":
                line.update(
                    kind="invoice",
                    label=self._invoice_label(session, move),
                    amount=move.amount_total,
                    why=move.invoice_line_ids[:1].name or "",
                    **self._invoice_state(session, move, moved),
                )
            else:
                line.update(
                    kind="credit_note",
                    label=_("Refund"),
                    amount=-move.amount_total,
                    why=move.ref or move.invoice_line_ids[:1].name or "",
                    **self._credit_note_state(session, move, moved),
                )
            lines.append(line)
        holds = session.transaction_ids.filtered(
            lambda tx: (
                tx.bookconnect_purpose == "hold"
                and tx.operation != "refund"
                and tx.state in ("authorized", "done", "cancel", "error")
            )
        )
        for hold in holds.sorted("id"):
            lines.append(
                {
                    "kind": "hold",
                    "label": _("Card hold"),
                    "amount": hold.bookconnect_held_amount or hold.amount,
                    "currency": hold.currency_id,
                    "date": day(hold.last_state_change or hold.create_date),
                    "why": _(
                        "Reserved on your card for the session: only what it costs is taken, "
                        "the rest is released."
                    ),
                    "document": "",
                    "url": "",
                    **self._hold_state(session, hold),
                }
            )
        fee = session.fee_charge_id
        # A fee billed on its own invoice is that invoice's line; not yet (in review,
        # waived) or kept from an advance payment, it is a line of its own.
        if fee and not fee.move_line_id and fee.amount > 0:
            lines.append(
                {
                    "kind": "fee",
                    "label": self._fee_label(session),
                    "amount": fee.amount,
                    "currency": session.currency_id,
                    "date": day(session.cancelled_at or session.ended_at),
                    "why": self._fee_reason(session, tz),
                    "document": "",
                    "url": "",
                    **self._fee_state(session, tz),
                }
            )
        order = {"hold": 0, "fee": 1, "invoice": 2, "credit_note": 3}
        lines.sort(key=lambda line: (line["date"] or fields.Date.today(), order[line["kind"]]))
        return lines

    @api.model
    def _fee_label(self, session):
        if session.fee_charge_id.kind == "no_show":
            return _("No-show fee")
        return _("Late-cancellation fee")

    @api.model
    def _fee_reason(self, session, tz):
        if session.fee_charge_id.kind == "no_show":
            return _(
                "You had not joined %(minutes)s minutes after the start of the session of "
                "%(start)s.",
                minutes=session.policy_id.no_show_delay_minutes,
                start=session._client_time(session.start, tz=tz),
            )
        return _(
            "The session of %(start)s was cancelled on %(when)s, after cancelling stopped "
            "being free.",
            start=session._client_time(session.start, tz=tz),
            when=session._client_time(session.cancelled_at, tz=tz),
        )

    @api.model
    def _fee_state(self, session, tz):
        if session.fee_state == "pending":
            return {
                "state": "in_review",
                "state_label": _(
                    "In review until %(until)s: the practice may waive it. After that it is "
                    "invoiced.",
                    until=session._client_time(session.fee_charge_id.due_at, tz=tz),
                ),
                "tone": "text-bg-warning",
            }
        if session.fee_state == "waived":
            return {"state": "waived", "state_label": _("Waived"), "tone": "text-bg-secondary"}
        return {
            "state": "charged",
            "state_label": _("Kept from what you paid in advance"),
            "tone": "text-bg-success",
        }

    @api.model
    def _invoice_label(self, session, move):
        kind = move.bookconnect_charge_ids[:1].kind
        if kind == "booked" or (kind == "usage" and session.policy_id.prepayment == "full"):
            return _("Session, paid in advance")
        return {
            "difference": _("Time beyond what was paid in advance"),
            "late_cancel": _("Late-cancellation fee"),
            "no_show": _("No-show fee"),
        }.get(kind, _("Session"))

    @api.model
    def _invoice_state(self, session, move, txs):
        """What became of a session invoice: paid (how), being paid, waiting, to pay."""
        currency = move.currency_id
        paid_by_provider = txs.filtered(lambda tx: tx.state == "done" and tx.operation != "refund")
        if move.payment_state in ("paid", "in_payment"):
            if paid_by_provider.filtered("token_id"):
                label = _("Paid by card")
            elif paid_by_provider:
                label = _("Paid online")
            elif session.policy_id.prepayment == "balance":
                label = _("Paid from your prepaid balance")
            else:
                label = _("Paid")
            return {"state": "paid", "state_label": label, "tone": "text-bg-success"}
        if move.payment_state == "reversed":
            return {
                "state": "reversed",
                "state_label": _("Cancelled by a credit note"),
                "tone": "text-bg-light",
            }
        if move.bookconnect_charge_deferred:
            return {
                "state": "deferred",
                "state_label": _("Added to your next card payment"),
                "tone": "text-bg-info",
            }
        if txs.filtered(
            lambda tx: (
                tx.state in ("draft", "pending", "authorized")
                and tx.operation != "refund"
                and tx.bookconnect_purpose in ("charge", "hold")
            )
        ):
            return {
                "state": "being_paid",
                "state_label": _("Being charged to your card"),
                "tone": "text-bg-info",
            }
        if move.payment_state == "partial":
            label = _(
                "Partly paid: %(amount)s left to pay",
                amount=format_amount(session.env, move.amount_residual, currency),
            )
        else:
            label = _("To pay")
        return {"state": "to_pay", "state_label": label, "tone": "text-bg-warning"}

    @api.model
    def _credit_note_state(self, session, move, txs):
        refunds = txs.filtered(lambda tx: tx.operation == "refund")
        if refunds.filtered(lambda tx: tx.state == "done"):
            return {
                "state": "refunded",
                "state_label": _("Refunded to your card"),
                "tone": "text-bg-success",
            }
        if refunds.filtered(lambda tx: tx.state in ("draft", "pending")):
            return {
                "state": "being_paid",
                "state_label": _("Being refunded to your card"),
                "tone": "text-bg-info",
            }
        if move.payment_state in ("paid", "in_payment", "reversed"):
            return {
                "state": "credited",
                "state_label": _("Deducted from what you owed"),
                "tone": "text-bg-success",
            }
        return {
            "state": "credited",
            "state_label": _("Credit on your account, used for your next invoices"),
            "tone": "text-bg-info",
        }

    @api.model
    def _hold_state(self, session, hold):
        currency = hold.currency_id
        if hold.state == "authorized":
            return {
                "state": "held",
                "state_label": _("Held on your card, not charged"),
                "tone": "text-bg-info",
            }
        if hold.state == "done":
            released = currency.round((hold.bookconnect_held_amount or hold.amount) - hold.amount)
            label = (
                _(
                    "%(taken)s taken, %(released)s released",
                    taken=format_amount(session.env, hold.amount, currency),
                    released=format_amount(session.env, released, currency),
                )
                if released > 0
                else _("Taken in full")
            )
            return {"state": "captured", "state_label": label, "tone": "text-bg-success"}
        if hold.state == "cancel":
            return {
                "state": "released",
                "state_label": _("Released: nothing was taken"),
                "tone": "text-bg-light",
            }
        return {
            "state": "refused",
            "state_label": _("Refused by your bank"),
            "tone": "text-bg-danger",
        }

    @api.model
    def _prepaid_shortfalls(self, sessions):
        """The upcoming prepaid sessions among these that the client's prepaid balance will
        not cover, counting the sessions before them (by start) first.

        A session needs its estimated price, and at least the policy's minimum balance to
        start.

        :return: dict session -> ``{"needed", "available", "missing", "balance"}`` (floats in
            the company currency; ``available`` is what is left for it after the sessions
            before it).
        """
        prepaid = sessions.filtered(
            lambda s: s.state == "scheduled" and s.policy_id.prepayment == "balance"
        )
        groups = {}
        for session in prepaid.sorted(lambda s: (s.start, s.id or 0)):
            key = (session.partner_id.commercial_partner_id, session.company_id)
            groups.setdefault(key, []).append(session)
        result = {}
        for (partner, company), group in groups.items():
            balance = (
                self.env["bookconnect.prepaid.balance"].sudo()._balances(partner, company)[partner]
            )
            currency = company.currency_id
            left = balance
            for session in group:
                needed = max(session.estimated_amount, session.policy_id.minimum_balance)
                available = max(left, 0.0)
                if currency.compare_amounts(available, needed) < 0:
                    result[session] = {
                        "needed": needed,
                        "available": available,
                        "missing": currency.round(needed - available),
                        "balance": balance,
                    }
                left = currency.round(left - session.estimated_amount)
        return result

    @api.model
    def _portal_invoice(self, session):
        """The posted customer invoice the client is shown for this session: its own, else
        its latest; empty if none."""
        invoices = (session.invoice_id | session.invoice_ids).filtered(
            lambda move: move.state == "posted" and move.move_type == "out_invoice"
        )
        if session.invoice_id in invoices:
            return session.invoice_id
        return invoices.sorted("id")[-1:] if invoices else invoices

    @api.model
    def _join_state(self, session, now=None):
        """When the call may be joined: it opens the company's join delay before the start
        and stays open until the end (or while the call is still running).

        :return: dict with ``url`` (the join link), ``open`` (joinable now), ``opens_at``
            (naive UTC) and ``over`` (no longer joinable)
        """
        now = now or fields.Datetime.now()
        opens_at = session.start - timedelta(
            minutes=session.company_id.bookconnect_join_before_minutes
        )
        is_open = (
            session.state in OPEN_STATES
            and now >= opens_at
            and (now <= session.stop or session.state == "in_progress")
        )
        return {
            "url": session.videocall_url,
            "open": is_open and bool(session.videocall_url),
            "opens_at": opens_at,
            "over": session.state not in OPEN_STATES or now > session.stop,
        }

    @api.model
    def _billing_status(self, session):
        """Where the session's money stands, in one sentence for the therapist and the
        practice manager: not invoiced yet (and why), held on the card, charged (how and
        when) or why not, refunded.

        It reads invoices and payment transactions, which they may not read: the
        ``billing_status`` field computes it as superuser.
        """
        money = session.currency_id.format

        def day(moment):
            local = fields.Datetime.context_timestamp(session, moment)
            return format_date(self.env, local.date(), date_format="d MMM")

        invoice = (
            session.invoice_id
            or session.invoice_ids.filtered(
                lambda m: m.move_type == "out_invoice" and m.state == "posted"
            ).sorted("id")[-1:]
        )
        if not invoice:
            hold = (
                self.env["bookconnect.card.hold"]
                ._active(session)
                .filtered(lambda tx: tx.state == "authorized")
            )
            if hold:
                return _("%(amount)s held on the card", amount=money(hold.amount))
            if session.fee_state == "pending":
                return _(
                    "%(fee)s fee in review: charged after %(day)s unless waived",
                    fee=money(session.fee_charge_id.amount),
                    day=day(session.fee_charge_id.due_at),
                )
            if session.fee_state == "waived":
                return _("Fee waived: %(reason)s", reason=session.fee_charge_id.waiver_reason)
            if session.state in OPEN_STATES:
                return _("Invoiced when the session ends")
            return _("Nothing to bill")
        if invoice.state != "posted":
            return _("Invoice %(name)s is not posted", name=invoice.name)
        txs = invoice.transaction_ids.filtered(
            lambda tx: tx.operation != "refund" and tx.bookconnect_purpose != "release"
        ).sorted("id")
        paid = txs.filtered(lambda tx: tx.state == "done")[-1:]
        failed = txs.filtered(
            lambda tx: tx.state in ("error", "cancel") and tx.bookconnect_purpose != "hold"
        )[-1:]
        policy = session.policy_id
        charges_card = policy.collection == "card" and (
            policy.prepayment != "balance" or policy.overrun == "card"
        )
        if invoice.payment_state in ("paid", "in_payment"):
            if paid.bookconnect_purpose == "hold":
                status = _(
                    "Captured from the card hold on %(day)s", day=day(paid.last_state_change)
                )
            elif paid.operation == "offline":
                status = _("Charged to the saved card on %(day)s", day=day(paid.last_state_change))
            elif paid:
                status = _("Paid online on %(day)s", day=day(paid.last_state_change))
            elif policy.prepayment == "balance":
                status = _("Paid from the prepaid balance")
            else:
                status = _("Paid")
        elif invoice.payment_state == "reversed":
            status = _("Cancelled by a credit note")
        elif txs.filtered(lambda tx: tx.state in ("draft", "pending", "authorized")):
            status = _("Charging the card: waiting for the bank")
        elif failed:
            status = _(
                "Card not charged: %(reason)s. The client was sent a link to pay.",
                reason=self.env["payment.transaction"]
                ._bookconnect_failure_reason(failed)
                .rstrip("."),
            )
        elif invoice.bookconnect_charge_deferred:
            status = _("Below the smallest charge: added to the client's next card charge")
        elif charges_card:
            status = _("Not charged (no usable saved card): the client was sent a link to pay")
        else:
            status = _("Waiting for the client to pay online")
        refunded = sum(
            invoice.reversal_move_ids.filtered(lambda m: m.state == "posted").mapped("amount_total")
        )
        if refunded and invoice.payment_state != "reversed":
            status = _("%(status)s; %(amount)s refunded", status=status, amount=money(refunded))
        return status
