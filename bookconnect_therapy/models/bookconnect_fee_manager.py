from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_amount, format_date

from ..core import cancellation_outcome, is_no_show
from .bookconnect_session_charge import FEE_KINDS
from .bookconnect_therapy_session import BILLING_WRITE, OPEN_STATES


class BookconnectFeeManager(models.AbstractModel):
    """Late-cancellation and no-show fees: a fee is a session charge put in review when it
    applies, waived by the practice or invoiced once its review window has passed."""

    _name = "bookconnect.fee.manager"
    _description = "Therapy fees: late cancellations and no-shows"

    @api.model
    def _session_price(self, session):
        """The price of the booked session, the base of percentage fees."""
        return session.policy_id._price(session.duration * 60, session.channel).amount

    @api.model
    def _cancellation_preview(self, session, now=None, booked_at=None):
        """What cancelling at ``now`` would cost the client.

        :param booked_at: when the session was booked (default: its own ``booked_at``); the
            booking page previews a session booked now.
        :return: dict with ``late`` (the free time has passed), ``fee`` (float, in the session
            currency: what cancelling now costs), ``late_fee`` (what a late cancellation
            costs), ``free_until`` (naive UTC: the last moment cancelling is free),
            ``by_grace`` (free until then only thanks to the free time after booking),
            ``booked_in_window`` (booked after cancelling had stopped being free: it was
            never free, or only for the free time after booking) and ``currency``
            (res.currency).
        """
        now = now or fields.Datetime.now()
        policy = session.policy_id
        late_fee = policy._fee("late", self._session_price(session))
        booked_at = booked_at or session.booked_at or session.create_date or None
        outcome = cancellation_outcome(
            session.start,
            now,
            policy.free_cancel_hours,
            late_fee,
            booked_at=booked_at,
            grace_minutes=policy.cancel_grace_minutes,
        )
        window_edge = session.start - timedelta(hours=policy.free_cancel_hours)
        return {
            "late": outcome.late,
            "fee": float(outcome.fee),
            "late_fee": float(late_fee),
            "free_until": outcome.free_until,
            "by_grace": outcome.by_grace,
            "booked_in_window": bool(booked_at and booked_at > window_edge),
            "currency": session.currency_id,
        }

    @api.model
    def _cancellation_terms(self, session, now=None, booked_at=None, tz=None, before_booking=False):
        """What cancelling costs and from when, in one sentence for the client.

        :param before_booking: worded for the booking page, before the client confirms.
        :return: dict with ``text`` and ``warn`` (cancelling will cost the fee sooner than
            the policy's usual window says: the session starts inside it).
        """
        now = now or fields.Datetime.now()
        preview = self._cancellation_preview(session, now, booked_at=booked_at)
        currency = preview["currency"]
        if currency.is_zero(preview["late_fee"]):
            return {"text": _("Cancelling is free."), "warn": False}
        fee = format_amount(self.env, preview["late_fee"], currency)
        hours = session.policy_id.free_cancel_hours
        until = session._client_time(preview["free_until"], tz=tz)
        if preview["by_grace"] and not preview["late"]:
            minutes = session.policy_id.cancel_grace_minutes
            text = (
                _(
                    "This session starts within the %(hours)s-hour free-cancellation window: "
                    "once booked, you can cancel it free until %(until)s (%(minutes)s minutes "
                    "after booking); after that, cancelling costs %(fee)s.",
                    hours=hours,
                    until=until,
                    minutes=minutes,
                    fee=fee,
                )
                if before_booking
                else _(
                    "This session was booked within the %(hours)s-hour free-cancellation "
                    "window: you can cancel it free until %(until)s (%(minutes)s minutes after "
                    "booking); after that, cancelling costs %(fee)s.",
                    hours=hours,
                    until=until,
                    minutes=minutes,
                    fee=fee,
                )
            )
            return {"text": text, "warn": True}
        if preview["late"] and session.start > now:
            text = (
                _(
                    "This session starts within the %(hours)s-hour free-cancellation window: "
                    "once booked, cancelling it costs %(fee)s.",
                    hours=hours,
                    fee=fee,
                )
                if before_booking
                else _(
                    "This session starts within the %(hours)s-hour free-cancellation window: "
                    "cancelling it costs %(fee)s.",
                    hours=hours,
                    fee=fee,
                )
            )
            return {"text": text, "warn": True}
        if preview["late"]:
            return {"text": _("Cancelling now costs %(fee)s.", fee=fee), "warn": True}
        return {
            "text": _(
                "Cancelling is free until %(until)s; after that, it costs %(fee)s.",
                until=until,
                fee=fee,
            ),
            "warn": False,
        }

    @api.model
    def _apply_fees(self, sessions, kind, now=None):
        """Put the policy's fee for a late cancellation or a no-show of ``sessions`` in
        review: it is invoiced after the policy's review window unless the therapist waives
        it, or waived at once when the policy spares a client's first offence. A session
        whose fee is nothing owes nothing: what it prepaid is released.

        :param kind: ``late_cancel`` or ``no_show``.
        :return: the fee charges made.
        """
        now = now or fields.Datetime.now()
        policy_kind = "late" if kind == "late_cancel" else "no_show"
        Charge = self.env["bookconnect.session.charge"].sudo()
        earlier = dict(
            Charge._read_group(
                [
                    ("partner_id", "in", sessions.partner_id.ids),
                    ("kind", "in", FEE_KINDS),
                    ("session_id", "not in", sessions.ids),
                ],
                ["partner_id"],
                ["__count"],
            )
        )
        charges = Charge.browse()
        for session in sessions:
            fee = float(session.policy_id._fee(policy_kind, self._session_price(session)))
            if session.currency_id.is_zero(fee):
                Charge._release_prepayments(session)
                continue
            values = {
                "session_id": session.id,
                "kind": kind,
                "amount": fee,
                "description": self._fee_line_label(session, kind),
            }
            if session.policy_id.waive_first_offence and not earlier.get(session.partner_id):
                charges |= Charge.create(
                    {
                        **values,
                        "state": "waived",
                        "waiver_reason": _("First late cancellation or no-show of this client"),
                    }
                )
                session.message_post(
                    body=_(
                        "The %(fee)s fee is waived: it is the client's first.",
                        fee=session.currency_id.format(fee),
                    )
                )
                Charge._release_prepayments(session)
                self.env["bookconnect.reminder.manager"]._notify_clients(
                    session, "bookconnect_therapy.mail_template_fee_waived"
                )
                earlier[session.partner_id] = 1
                continue
            due = now + timedelta(hours=session.policy_id.review_hours)
            charges |= Charge.create({**values, "state": "review", "due_at": due})
            earlier[session.partner_id] = earlier.get(session.partner_id, 0) + 1
            session.message_post(
                body=_(
                    "A %(fee)s fee applies (%(kind)s). It will be charged after %(due)s unless "
                    "it is waived.",
                    fee=session.currency_id.format(fee),
                    kind=self._fee_kind_label(kind),
                    due=session._client_time(
                        due, tz=session.therapist_id.tz or session.company_id.partner_id.tz or "UTC"
                    ),
                )
            )
            self.env["bookconnect.reminder.manager"]._notify_clients(
                session, "bookconnect_therapy.mail_template_fee_applied"
            )
        return charges

    @api.model
    def _fee_kind_label(self, kind):
        return {"late_cancel": _("Late cancellation"), "no_show": _("No-show")}[kind]

    @api.model
    def _fee_line_label(self, session, kind):
        """The fee's invoice line: what, and which session (its day for the client)."""
        start = fields.Datetime.context_timestamp(
            session.with_context(tz=session.partner_id.tz or "UTC"), session.start
        ).date()
        return _(
            "%(label)s fee — session of %(date)s",
            label=self._fee_kind_label(kind),
            date=format_date(session.env, start, lang_code=session.partner_id.lang),
        )

    @api.model
    def _waive_fees(self, sessions, reason):
        """Waive the fees in review of ``sessions`` (the caller checked the user may), tell
        the chatter why and the client that they owe nothing for it.

        :raise ValidationError: without a reason.
        :raise UserError: when a session has no fee in review.
        """
        if not (reason or "").strip():
            raise ValidationError(_("Say why the fee is waived."))
        for session in sessions:
            fee = session.sudo().fee_charge_id
            if fee.state != "review":
                raise UserError(
                    _("Session %(name)s has no fee in review to waive.", name=session.name)
                )
            fee.write({"state": "waived", "waiver_reason": reason.strip()})
            session.message_post(
                body=_(
                    "%(user)s waived the %(fee)s fee: %(reason)s",
                    user=self.env.user.name,
                    fee=session.currency_id.format(fee.amount),
                    reason=reason.strip(),
                ),
                author_id=self.env.user.partner_id.id,
            )
            self.env["bookconnect.session.charge"].sudo()._release_prepayments(session)
            self.env["bookconnect.reminder.manager"]._notify_clients(
                session.sudo(), "bookconnect_therapy.mail_template_fee_waived"
            )

    @api.model
    def _mark_no_shows(self, sessions, now=None, manual=False):
        """Mark the open ``sessions`` as no-shows and put the policy's fee in review.

        :param manual: marked by the therapist: sessions not started yet, or that the client
            joined, are refused.
        :return: the sessions this call marked (others were no longer open).
        """
        now = now or fields.Datetime.now()
        for session in sessions if manual else ():
            if session.start > now:
                raise UserError(_("Session %(name)s has not started yet.", name=session.name))
            if session.call_id.client_joined:
                raise UserError(
                    _("The client joined session %(name)s: end it instead.", name=session.name)
                )
        sessions = sessions._lock_in_states(OPEN_STATES)
        sessions.call_id._close_open_segments(now, automatic=True)
        sessions.with_context(**{BILLING_WRITE: True}).write({"state": "no_show", "ended_at": now})
        for session in sessions:
            session.message_post(body=_("The client did not come: marked as a no-show."))
        self._apply_fees(sessions, "no_show", now)
        return sessions

    @api.model
    def _cron_detect_no_shows(self, batch_size=200):
        """Mark as no-shows the sessions whose client has not joined within the policy's delay."""
        now = fields.Datetime.now()
        candidates = self.env["bookconnect.therapy.session"].search(
            [
                ("state", "in", OPEN_STATES),
                ("start", "<=", now),
                ("call_id.client_joined", "=", False),
            ],
            order="start",
            limit=batch_size * 5,
        )
        due = candidates.filtered(
            lambda s: is_no_show(s.start, now, s.policy_id.no_show_delay_minutes, False)
        )[:batch_size]
        marked = self._mark_no_shows(due, now)
        self.env["ir.cron"]._notify_progress(
            done=len(marked), remaining=max(len(candidates) - len(due), 0)
        )

    @api.model
    def _cron_charge_fees(self, batch_size=200):
        """Invoice and collect the fees whose review window has passed."""
        due = self.env["bookconnect.session.charge"].search(
            [("state", "=", "review"), ("due_at", "<=", fields.Datetime.now())],
            order="due_at",
            limit=batch_size + 1,
        )
        remaining = max(len(due) - batch_size, 0)
        charged = self._charge_fees(due[:batch_size])
        self.env["ir.cron"]._notify_progress(done=len(charged), remaining=remaining)

    @api.model
    def _charge_fees(self, fees):
        """Fees whose review ended: invoiced and collected like a session (from the card hold
        first); a session paid up front keeps the fee from that payment and is refunded the
        rest.

        :return: the fee charges this call charged (others were taken by another worker).
        """
        fees = fees.sudo().filtered(lambda c: c.state == "review")._lock_in_states(("review",))
        Charge = self.env["bookconnect.session.charge"].sudo()
        refunds = []
        for fee in fees:
            session = fee.session_id
            invoice = session.invoice_id
            if not invoice:
                fee.state = "to_invoice"
                continue
            currency = session.currency_id
            keep = min(fee.amount, invoice.amount_total)
            paid = invoice.payment_state in ("paid", "in_payment")
            fee.write({"state": "paid" if paid else "invoiced", "move_id": invoice.id})
            rest = currency.round(invoice.amount_total - keep)
            if rest > 0:
                refunds.append(
                    Charge._prepare_refund_values(
                        invoice,
                        rest,
                        _("Cancelled: only the %(fee)s fee is kept", fee=currency.format(keep)),
                    )
                )
        (
            fees.filtered(lambda c: c.state == "to_invoice") | Charge.create(refunds)
        )._create_invoices()
        return fees
