from datetime import timedelta

from odoo import Command, _, api, fields, models
from odoo.tools import float_is_zero

# Stripe keeps an uncaptured payment about 7 days: holds older than this are placed again.
HOLD_RENEW_AFTER = timedelta(days=6)


class BookconnectCardHold(models.AbstractModel):
    """Card holds: what a session is expected to cost, reserved on the client's saved card
    before it starts, placed again before it expires, captured for what the session's invoice
    says (asking the provider when a capture's answer is lost), and let go when nothing is
    owed.

    Requests go through the payment engine, which reports their outcome to
    :meth:`_on_payment_outcome`.
    """

    _name = "bookconnect.card.hold"
    _description = "Therapy card holds"

    def _active(self, session):
        """The card hold of ``session`` that still reserves money (or is being placed): the
        newest, when a renewed one is placed before the old one is let go."""
        return (
            session.sudo()
            .transaction_ids.filtered(
                lambda tx: tx.bookconnect_purpose == "hold" and tx.state in ("draft", "authorized")
            )
            .sorted("id", reverse=True)[:1]
        )

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
            hold = self._active(session)
            if not hold:
                place |= session
            elif hold.state == "authorized" and hold.create_date < now - HOLD_RENEW_AFTER:
                renew |= session
        place |= renew
        batch = place[:batch_size]
        # Only the holds placed again in this batch are let go: the others keep holding until
        # a later batch places theirs.
        for session in renew & batch:
            self._void(self._active(session))
            session.message_post(body=_("The card hold was renewed before it expired."))
        placed = self._place(batch)
        self.env["ir.cron"]._notify_progress(
            done=len(placed), remaining=max(len(place) - batch_size, 0)
        )

    def _place(self, sessions):
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
                self.env["payment.transaction"]._bookconnect_prepare_offline_values(
                    self._name,
                    token,
                    amount,
                    session.currency_id,
                    partner=session.partner_id.commercial_partner_id,
                    purpose="hold",
                    reference=reference,
                    bookconnect_session_id=session.id,
                )
            )
        txs = self.env["payment.transaction"].create(values)
        return txs._bookconnect_send()

    def _void(self, holds):
        """Let card holds go: those placed are voided through the payment engine, those not
        placed yet are cancelled."""
        holds.filtered(lambda t: t.state == "authorized")._bookconnect_send("void")
        for hold in holds.filtered(lambda t: t.state == "draft"):
            hold._set_canceled()

    def _capture(self, hold, invoice, handler=None):
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
        hold._bookconnect_send("capture", min(due, hold.amount), handler=handler or self._name)
        return hold

    def _on_capture_outcome(self, holds):
        """Record what became of captures: booked when done (paid to the invoice); when the
        provider says a hold was not captured, its open invoices are let go of it.

        :return: the invoices let go, to be collected another way.
        """
        refused = self.env["account.move"]
        for hold in holds:
            invoices = hold.invoice_ids.filtered(
                lambda m: m.state == "posted" and m.payment_state in ("not_paid", "partial")
            )
            if hold.state == "done":
                # Booked at once, even in a job: what the hold did not cover is known only
                # once the capture is paid to the invoice.
                if not hold.is_post_processed:
                    hold._post_process()
                released = (
                    hold.bookconnect_held_amount - hold.amount
                    if hold.bookconnect_held_amount
                    else 0
                )
                hold._bookconnect_log_on_sessions(
                    _(
                        "%(captured)s captured from the card hold%(released)s.",
                        captured=hold.currency_id.format(hold.amount),
                        released=_(
                            "; %(amount)s released", amount=hold.currency_id.format(released)
                        )
                        if released > 0
                        else "",
                    ),
                )
            elif hold.state == "authorized" and invoices:
                hold._bookconnect_log_on_sessions(
                    _(
                        "The card hold could not be captured (%(error)s): the invoice is "
                        "charged instead.",
                        error=hold.state_message,
                    ),
                )
                hold.invoice_ids = [Command.unlink(invoice.id) for invoice in invoices]
                refused |= invoices
        return refused

    @api.model
    def _on_payment_outcome(self, txs, operation="payment", error=None):
        """What the payment engine reports about card holds: placed (the client is told) or
        refused, captured, or a request whose outcome is unknown (tried again)."""
        if error:
            if operation == "void":
                body = _("The card hold could not be released (%(error)s).", error=error)
            elif operation == "capture":
                body = _(
                    "The card hold could not be captured (%(error)s); it will be tried again "
                    "automatically.",
                    error=error,
                )
            else:
                body = _(
                    "The card hold could not be placed yet (%(error)s); it will be tried again "
                    "automatically.",
                    error=error,
                )
            txs._bookconnect_log_on_sessions(body)
            return
        if operation == "capture":
            self._on_capture_outcome(txs)
            return
        if operation != "payment":
            return
        held = txs.filtered(lambda t: t.state == "authorized")
        for tx in held:
            tx.bookconnect_session_id.message_post(
                body=_(
                    "%(amount)s is held on the client's card until the session ends.",
                    amount=tx.currency_id.format(tx.amount),
                )
            )
        self.env["bookconnect.reminder.manager"]._notify_clients(
            held.bookconnect_session_id, "bookconnect_therapy.mail_template_hold_placed"
        )
        for tx in txs.filtered(lambda t: t.state in ("error", "cancel")):
            reason = tx._bookconnect_failure_reason(tx)
            tx._bookconnect_log_on_sessions(
                _("The card hold was refused: %(reason)s", reason=reason)
            )
