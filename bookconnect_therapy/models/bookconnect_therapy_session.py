import uuid
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import format_datetime

from .bookconnect_session_charge import FEE_KINDS, SESSION_KINDS

OPEN_STATES = ("scheduled", "in_progress")
BILLED_STATES = ("invoiced", "paid")
# Context keys, one meaning each. The calendar event already holds the values being
# written: do not write them back to it.
CALENDAR_SYNCED = "bookconnect_calendar_synced"
# An internal write of the billing itself (pricing, correction): the lock on the fields
# that decide the price does not apply.
BILLING_WRITE = "bookconnect_billing_write"
# Fields that decide the price: frozen once the session is invoiced.
PRICING_FIELDS = {
    "policy_id",
    "partner_id",
    "therapist_id",
    "start",
    "stop",
    "channel",
    "corrected_minutes",
    "company_id",
}


class BookconnectTherapySession(models.Model):
    _name = "bookconnect.therapy.session"
    _description = "Therapy session"
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin", "bookconnect.lock.mixin"]
    _order = "start desc, id desc"
    _check_company_auto = True

    # Indexed: the external video service addresses sessions by this token.
    access_token = fields.Char(index="btree_not_null")
    name = fields.Char(
        "Reference", required=True, readonly=True, copy=False, default=lambda self: _("New")
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    therapist_id = fields.Many2one(
        "res.users",
        required=True,
        index=True,
        tracking=True,
        default=lambda self: self.env.user,
        domain=lambda self: [
            ("groups_id", "in", self.env.ref("bookconnect_therapy.group_therapist").id)
        ],
    )
    partner_id = fields.Many2one(
        "res.partner", "Client", required=True, index=True, tracking=True, check_company=True
    )
    start = fields.Datetime(required=True, tracking=True, index=True)
    stop = fields.Datetime(
        "End",
        required=True,
        tracking=True,
        compute="_compute_stop",
        store=True,
        readonly=False,
        precompute=True,
    )
    duration = fields.Integer(
        "Booked minutes", compute="_compute_duration", store=True, precompute=True
    )
    channel = fields.Selection(
        [("video", "Video"), ("voice", "Voice"), ("chat", "Chat")],
        required=True,
        default="video",
        tracking=True,
    )
    policy_id = fields.Many2one(
        "bookconnect.billing.policy",
        "Billing policy",
        compute="_compute_policy_id",
        store=True,
        readonly=False,
        precompute=True,
        check_company=True,
        tracking=True,
        ondelete="restrict",
    )
    currency_id = fields.Many2one(
        "res.currency", compute="_compute_currency_id", store=True, precompute=True
    )
    state = fields.Selection(
        [
            ("scheduled", "Scheduled"),
            ("in_progress", "In progress"),
            ("done", "Done"),
            ("invoiced", "Invoiced"),
            ("paid", "Paid"),
            ("cancelled", "Cancelled"),
            ("late_cancelled", "Cancelled late"),
            ("no_show", "No-show"),
        ],
        required=True,
        default="scheduled",
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    calendar_event_id = fields.Many2one(
        "calendar.event", "Calendar event", readonly=True, copy=False, index="btree_not_null"
    )
    videocall_url = fields.Char(
        "Video call link", related="calendar_event_id.videocall_location", readonly=True
    )
    call_events_url = fields.Char(
        "Call-events URL",
        compute="_compute_call_events_url",
        groups="bookconnect_therapy.group_therapist",
        help="Where an external video service posts this session's join and leave events.",
    )
    call_id = fields.Many2one(
        "bookconnect.metered.call", "Metered call", readonly=True, copy=False, index=True
    )
    segment_ids = fields.One2many(related="call_id.segment_ids", string="Call timeline")
    measured_seconds = fields.Integer(
        related="call_id.billable_seconds", string="Measured (s)", store=True
    )
    measured_minutes = fields.Float(
        compute="_compute_measured_minutes", digits=(16, 1), string="Measured (min)"
    )
    corrected_minutes = fields.Integer(
        "Corrected minutes", readonly=True, copy=False, tracking=True
    )
    correction_reason = fields.Char(readonly=True, copy=False)
    corrected_by_id = fields.Many2one("res.users", readonly=True, copy=False)
    billable_minutes = fields.Integer(readonly=True, copy=False)
    quantity = fields.Float(readonly=True, copy=False, digits="Product Unit of Measure")
    unit_price = fields.Monetary(readonly=True, copy=False)
    amount = fields.Monetary(readonly=True, copy=False, tracking=True)
    estimated_amount = fields.Monetary(
        compute="_compute_estimated_amount", help="Price of the booked duration under the policy."
    )
    ended_at = fields.Datetime(readonly=True, copy=False)
    charge_ids = fields.One2many(
        "bookconnect.session.charge", "session_id", "Charges", readonly=True
    )
    fee_charge_id = fields.Many2one(
        "bookconnect.session.charge",
        "Fee",
        compute="_compute_fee_charge_id",
        compute_sudo=True,
        help="The late-cancellation or no-show fee, if any.",
    )
    fee_state = fields.Selection(
        [
            ("pending", "In review"),
            ("waived", "Waived"),
            ("charged", "Charged"),
        ],
        compute="_compute_fee_charge_id",
        compute_sudo=True,
    )
    policy_summary = fields.Text(
        "Terms for the client", compute="_compute_policy_summary", compute_sudo=True
    )
    remaining_minutes = fields.Integer(
        "Prepaid minutes left",
        compute="_compute_remaining_minutes",
        help="Minutes the client's prepaid balance still pays for in this session.",
    )
    balance_warned = fields.Boolean(readonly=True, copy=False)
    overrun_notified = fields.Boolean(readonly=True, copy=False)
    chat_open = fields.Boolean(readonly=True, copy=False)
    cancelled_at = fields.Datetime(readonly=True, copy=False)
    cancelled_by = fields.Selection(
        [
            ("practice", "Practice"),
            ("client", "Client"),
            ("unconfirmed", "Booking not confirmed in time"),
        ],
        readonly=True,
        copy=False,
    )
    booked_online = fields.Boolean(
        readonly=True, copy=False, help="Booked by the client on the booking pages."
    )
    booked_at = fields.Datetime(
        default=fields.Datetime.now,
        readonly=True,
        copy=False,
        help="When the session was booked: the policy's free cancellation after booking "
        "counts from then.",
    )
    confirm_by = fields.Datetime(
        "Confirm by",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="An online booking still waiting for what the payment terms ask for (a saved "
        "card, payment in advance) is released at this time if it has not been given.",
    )
    invoice_id = fields.Many2one(
        "account.move",
        compute="_compute_invoice_id",
        store=True,
        copy=False,
        index=True,
        help="The invoice of the session's price: booked (paid in advance) or measured.",
    )
    invoice_ids = fields.One2many("account.move", "bookconnect_session_id", "All invoices")
    invoice_count = fields.Integer(compute="_compute_invoice_count", compute_sudo=True)
    # Therapists and practice managers read neither invoices nor payments: what they need
    # to know of them is read as superuser, in these fields.
    invoice_name = fields.Char("Invoice number", related="invoice_id.name")
    payment_state = fields.Selection(related="invoice_id.payment_state", string="Payment")
    billing_status = fields.Char("Billing", compute="_compute_billing_status", compute_sudo=True)
    transaction_ids = fields.One2many(
        "payment.transaction", "bookconnect_session_id", "Payment transactions"
    )
    note = fields.Html(
        "Session notes",
        groups="bookconnect_therapy.group_therapist",
        copy=False,
        help="Private clinical notes: never on invoices, emails or the portal.",
    )

    _sql_constraints = [
        ("name_unique", "UNIQUE(company_id, name)", "Session references are unique."),
    ]

    # ------------------------------------------------------------------
    # Constraints
    # ------------------------------------------------------------------

    @api.constrains("start", "stop")
    def _check_times(self):
        for session in self:
            if session.stop <= session.start:
                raise ValidationError(
                    _("Session %(name)s must end after it starts.", name=session.name)
                )
            if session.stop - session.start > timedelta(hours=12):
                raise ValidationError(
                    _(
                        "Session %(name)s is longer than 12 hours: check its times.",
                        name=session.name,
                    )
                )

    @api.constrains("therapist_id")
    def _check_therapist(self):
        group = self.env.ref("bookconnect_therapy.group_therapist")
        for session in self:
            if group not in session.therapist_id.groups_id:
                raise ValidationError(
                    _("%(user)s is not a therapist.", user=session.therapist_id.name)
                )

    @api.constrains("partner_id", "therapist_id")
    def _check_client_is_not_therapist(self):
        for session in self:
            if session.partner_id == session.therapist_id.partner_id:
                raise ValidationError(_("A therapist cannot be their own client."))

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------

    @api.depends("start", "stop")
    def _compute_duration(self):
        for session in self:
            if session.start and session.stop:
                session.duration = int((session.stop - session.start).total_seconds() // 60)
            else:
                session.duration = 0

    @api.depends("start", "policy_id")
    def _compute_stop(self):
        """A new session lasts its policy's session length (the practice's online-booking
        length without a policy) from its start; a saved one keeps its end."""
        for session in self:
            if not session.start or (session.stop and session._origin.id):
                session.stop = session.stop
                continue
            company = session.company_id or self.env.company
            minutes = session.policy_id.session_minutes or company.bookconnect_booking_slot_minutes
            session.stop = session.start + timedelta(minutes=minutes)

    @api.depends("partner_id", "therapist_id", "company_id")
    def _compute_policy_id(self):
        for session in self:
            if session.state in BILLED_STATES:
                continue
            session.policy_id = (
                session.partner_id.commercial_partner_id.bookconnect_policy_id
                or session.partner_id.bookconnect_policy_id
                or session.therapist_id.bookconnect_policy_id
                or session.company_id.bookconnect_policy_id
                or session.policy_id
            )

    @api.depends("policy_id")
    def _compute_currency_id(self):
        for session in self:
            session.currency_id = session.policy_id.currency_id or session.company_id.currency_id

    @api.depends("measured_seconds")
    def _compute_measured_minutes(self):
        for session in self:
            session.measured_minutes = session.measured_seconds / 60.0

    @api.depends("policy_id", "duration", "channel")
    def _compute_estimated_amount(self):
        for session in self:
            if session.policy_id and session.duration:
                price = session.policy_id._price(session.duration * 60, session.channel)
                session.estimated_amount = float(price.amount)
            else:
                session.estimated_amount = 0.0

    def _compute_remaining_minutes(self):
        for session in self:
            remaining = (
                self.env["bookconnect.prepaid.watch"]._remaining_minutes(session)
                if session.state in OPEN_STATES and session.policy_id
                else None
            )
            session.remaining_minutes = max(int(remaining or 0), 0)

    @api.depends("policy_id", "partner_id.lang")
    def _compute_policy_summary(self):
        for session in self:
            session.policy_summary = session.policy_id._client_summary(session.partner_id.lang)

    @api.depends("charge_ids.kind", "charge_ids.state")
    def _compute_fee_charge_id(self):
        states = {"review": "pending", "waived": "waived", "cancelled": False}
        for session in self:
            fee = session.charge_ids.filtered(
                lambda c: c.kind in FEE_KINDS and c.state != "cancelled"
            )[:1]
            session.fee_charge_id = fee
            session.fee_state = states.get(fee.state, "charged") if fee else False

    @api.depends("charge_ids.move_id")
    def _compute_invoice_id(self):
        for session in self:
            charges = session.charge_ids.filtered(lambda c: c.kind in SESSION_KINDS and c.move_id)
            session.invoice_id = charges.sorted("id")[:1].move_id

    @api.depends("invoice_ids")
    def _compute_invoice_count(self):
        for session in self:
            session.invoice_count = len(session.invoice_ids)

    @api.depends(
        "state",
        "charge_ids.state",
        "invoice_ids.payment_state",
        "invoice_ids.transaction_ids.state",
        "transaction_ids.state",
    )
    def _compute_billing_status(self):
        for session in self:
            session.billing_status = self.env["bookconnect.client.money"]._billing_status(session)

    def _compute_call_events_url(self):
        for session in self:
            session.call_events_url = (
                f"{session.get_base_url()}/bookconnect/calls/{session.access_token}/events"
                if session.access_token
                else False
            )

    def _compute_access_url(self):
        result = super()._compute_access_url()
        for session in self:
            session.access_url = f"/my/sessions/{session.id}"
        return result

    @api.depends("partner_id", "start")
    def _compute_display_name(self):
        for session in self:
            when = (
                fields.Datetime.context_timestamp(session, session.start).strftime("%d %b %Y %H:%M")
                if session.start
                else ""
            )
            session.display_name = " — ".join(p for p in (session.partner_id.name, when) if p)

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", _("New")) == _("New"):
                vals["name"] = self.env["ir.sequence"].next_by_code("bookconnect.therapy.session")
            vals.setdefault("access_token", uuid.uuid4().hex)
        sessions = super().create(vals_list)
        missing = sessions.filtered(lambda s: not s.policy_id)
        if missing:
            raise UserError(
                _(
                    "No billing policy for the session with %(client)s: choose one, or set a "
                    "default on the client, the therapist or in the Therapy settings.",
                    client=missing[0].partner_id.name,
                )
            )
        calls = (
            self.env["bookconnect.metered.call"]
            .sudo()
            .create([{"session_id": session.id} for session in sessions])
        )
        Event = self.env["calendar.event"]
        events = (
            Event.sudo()
            .with_context(**{CALENDAR_SYNCED: True}, no_mail_to_attendees=True)
            .create([Event._bookconnect_prepare_session_values(s) for s in sessions])
        )
        for session, call, event in zip(sessions, calls, events, strict=True):
            session.write({"call_id": call.id, "calendar_event_id": event.id})
        self.env["bookconnect.reminder.manager"]._send_booking_confirmations(
            sessions.filtered(lambda s: s.start > fields.Datetime.now())
        )
        return sessions

    def web_save(self, vals, specification, next_id=None):
        """Override of web: a session saved new from the form is confirmed at once, as the
        therapist expects (a pay-in-full session's booked price is invoiced)."""
        sessions = self
        if not sessions:
            sessions = self.create(vals)
            sessions.action_confirm()
            vals = {}
        return super(BookconnectTherapySession, sessions).web_save(
            vals, specification, next_id=next_id
        )

    def write(self, vals):
        context = self.env.context
        if PRICING_FIELDS & set(vals) and not context.get(BILLING_WRITE):
            locked = self.filtered(lambda s: s.state in BILLED_STATES)
            if locked:
                raise UserError(
                    _(
                        "Session %(name)s is invoiced: its client, therapist, times and policy "
                        "can no longer change. Refund it instead.",
                        name=locked[0].name,
                    )
                )
        result = super().write(vals)
        if not context.get(CALENDAR_SYNCED) and {"start", "stop", "partner_id"} & set(vals):
            self.env["calendar.event"]._bookconnect_sync_from_sessions(self)
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_only_unbilled(self):
        for session in self:
            if session.state not in ("scheduled", "cancelled") or session.invoice_ids:
                raise UserError(
                    _(
                        "Session %(name)s has been held or billed and is kept for the record; "
                        "cancel it instead.",
                        name=session.name,
                    )
                )

    def unlink(self):
        events = self.calendar_event_id
        result = super().unlink()
        events.sudo().with_context(**{CALENDAR_SYNCED: True}).unlink()
        return result

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_end_session(self):
        """End the sessions now: close the call, price it, post and send the invoice.

        Idempotent: sessions already ended are left as they are.
        """
        self._check_access_therapist()
        self.sudo()._end_sessions()
        return True

    def action_open_invoices(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("account.action_move_out_invoice")
        action["domain"] = [("id", "in", self.invoice_ids.ids)]
        action["context"] = {"create": False, "default_move_type": "out_invoice"}
        if len(self.invoice_ids) == 1:
            action["views"] = [(self.env.ref("account.view_move_form").id, "form")]
            action["res_id"] = self.invoice_ids.id
        return action

    def action_join_call(self):
        """The therapist joins the session's video call (Odoo Discuss, or the meeting link)."""
        self.ensure_one()
        if not self.videocall_url:
            raise UserError(_("Session %(name)s has no video call.", name=self.name))
        return {"type": "ir.actions.act_url", "url": self.videocall_url, "target": "self"}

    def action_open_calendar_event(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "calendar.event",
            "res_id": self.calendar_event_id.id,
            "view_mode": "form",
        }

    def action_correct_minutes(self):
        return self._wizard_action(
            "bookconnect.session.correct",
            _("Correct the measured time"),
            minutes=self.corrected_minutes or round(self.measured_seconds / 60),
        )

    def action_refund(self):
        return self._wizard_action("bookconnect.session.refund", _("Refund the session"))

    def action_waive_fee(self):
        return self._wizard_action("bookconnect.fee.waive", _("Waive the fee"))

    def _wizard_action(self, res_model, name, **defaults):
        """The action opening the wizard ``res_model`` on this session, in a dialog, with
        ``defaults`` as the wizard's default values."""
        self.ensure_one()
        defaults = {f"default_{key}": value for key, value in defaults.items()}
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": res_model,
            "view_mode": "form",
            "target": "new",
            "context": {"default_session_id": self.id, **defaults},
        }

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------

    def _check_access_therapist(self):
        """Raise unless the current user may run these sessions (their therapist or a manager)."""
        self.check_access("write")
        if not self.env.user.has_group("bookconnect_therapy.group_practice_manager"):
            others = self.filtered(lambda s: s.therapist_id != self.env.user)
            if others:
                raise AccessError(
                    _("Only the session's therapist or a practice manager can do this.")
                )

    def _participant_partners(self):
        self.ensure_one()
        return self.therapist_id.partner_id | self.partner_id

    def _cancel(self, by="practice"):
        """Cancel scheduled sessions. ``by``: ``practice`` (never a fee), ``client`` (late
        cancellations follow the policy) or ``unconfirmed`` (an online booking released for
        want of a card or payment: never a fee).

        :return: the sessions this call cancelled (others were no longer scheduled).
        """
        sessions = self._lock_in_states(("scheduled",))
        now = fields.Datetime.now()
        notes = {
            "practice": _("Session cancelled by the practice."),
            "late": _("Session cancelled late by the client."),
            "client": _("Session cancelled by the client within the free window."),
        }
        for session in sessions:
            preview = (
                self.env["bookconnect.fee.manager"]._cancellation_preview(session, now)
                if by == "client"
                else {"late": False}
            )
            state = "late_cancelled" if preview["late"] else "cancelled"
            session.write({"state": state, "cancelled_at": now, "cancelled_by": by})
            # The release of an unconfirmed booking is noted by the release itself.
            if by != "unconfirmed":
                session.message_post(body=notes["late" if preview["late"] else by])
        sessions.calendar_event_id.sudo().with_context(**{CALENDAR_SYNCED: True}).write(
            {"active": False}
        )
        free = sessions.filtered(lambda s: s.state == "cancelled")
        self.env["bookconnect.session.charge"]._release_prepayments(free)
        self.env["bookconnect.fee.manager"]._apply_fees(sessions - free, "late_cancel", now)
        if by != "unconfirmed":
            # A fee in review or waived is told by the fee's own email, which says the session
            # is cancelled too: one email per cancellation.
            self.env["bookconnect.reminder.manager"]._notify_clients(
                sessions.filtered(lambda s: s.fee_state not in ("pending", "waived")),
                "bookconnect_therapy.mail_template_session_cancelled",
            )
        return sessions

    def action_client_cancel(self):
        """Cancel as the client (portal): free inside the policy's window, else late.

        :raise AccessError: when the current user is not the session's client.
        """
        self.ensure_one()
        if self.partner_id != self.env.user.partner_id:
            raise AccessError(_("Only the session's client can cancel it this way."))
        if self.state != "scheduled":
            raise UserError(_("Session %(name)s can no longer be cancelled.", name=self.name))
        return bool(self.sudo()._cancel(by="client"))

    def action_cancel(self):
        """Cancel the sessions on the practice's side (no fee)."""
        self._check_access_therapist()
        self.sudo()._cancel(by="practice")
        return True

    def _end_sessions(self, automatic=False):
        """End sessions: close their calls, price them and invoice what is billable.

        Sessions not in progress or scheduled, or locked by another worker, are skipped, so
        calling this twice (or from two workers) never invoices twice.

        :param automatic: ended by the sweep rather than by the therapist: connections still
            open are closed at their last sign of life, never later than the scheduled end.
        :return: the sessions this call ended.
        """
        sessions = self._lock_in_states(OPEN_STATES)
        if not sessions:
            return sessions
        now = fields.Datetime.now()
        sessions.call_id._close_open_segments(now, automatic=automatic)
        Charge = self.env["bookconnect.session.charge"]
        values_by_session = Charge._prepare_billing_values(sessions)
        for session in sessions:
            session.with_context(**{BILLING_WRITE: True}).write(
                {**values_by_session[session], "state": "done", "ended_at": now}
            )
        upfront = sessions.filtered("invoice_id")
        billable = (sessions - upfront).filtered(lambda s: s.amount > 0)
        for session in sessions - upfront - billable:
            session.message_post(
                body=_(
                    "The session ended with nothing to bill (%(minutes)s billable minutes).",
                    minutes=session.billable_minutes,
                ),
            )
        billable._invoice_usage()
        Charge._settle_upfront(upfront)
        for session in upfront:
            paid = session.invoice_id.payment_state in ("paid", "in_payment", "reversed")
            session.with_context(**{BILLING_WRITE: True}).write(
                {"state": "paid" if paid else "invoiced"}
            )
        return sessions

    def _prepare_invoice(self, journal, move_type="out_invoice"):
        """Values of a customer invoice (or credit note) of the session, without lines: each
        charge it bills adds its own (see ``bookconnect.session.charge``)."""
        self.ensure_one()
        return {
            "move_type": move_type,
            "journal_id": journal.id,
            "company_id": self.company_id.id,
            "partner_id": self.partner_id.id,
            "currency_id": self.currency_id.id,
            "invoice_date": fields.Date.context_today(self),
            "invoice_origin": self.name,
            # The therapist is the salesperson: revenue per therapist in Odoo's reports, and
            # the name the client reads on the invoice (not whoever ran the sweep).
            "invoice_user_id": self.therapist_id.id,
            "bookconnect_session_id": self.id,
            "invoice_line_ids": [],
        }

    def action_confirm(self):
        """Confirm the sessions (see :meth:`_confirm`)."""
        self._check_access_therapist()
        self.sudo()._confirm()
        return True

    def _confirm(self):
        """Confirm booked sessions: under a pay-in-full policy, the booked price is invoiced
        now and collected (saved card, or the portal) before the session; the end settles
        the difference with the measurement. Safe to call twice.

        :return: the invoices made.
        """
        sessions = self.filtered(
            lambda s: s.state == "scheduled" and s.policy_id.prepayment == "full"
        )
        return self.env["bookconnect.session.charge"].sudo()._invoice_booked(sessions)

    def _active_hold(self):
        """The session's card hold that still reserves money (the hold email shows it)."""
        return self.env["bookconnect.card.hold"]._active(self)

    def _refund(self, amount, reason):
        """Refund (part of) the session's invoice: credit note plus refund of what was paid
        by card. Only the therapist or a practice manager may."""
        self.ensure_one()
        self._check_access_therapist()
        return self.env["bookconnect.session.charge"].sudo()._refund_session(self, amount, reason)

    def _mark_paid(self):
        self.filtered(lambda s: s.state == "invoiced").with_context(**{BILLING_WRITE: True}).write(
            {"state": "paid"}
        )

    def _invoice_usage(self):
        """Invoice priced sessions their measured price, through their usage charge."""
        # Invoiced before the invoices are collected: a payment taken at once marks it paid.
        self.with_context(**{BILLING_WRITE: True}).write({"state": "invoiced"})
        self.env["bookconnect.session.charge"]._invoice_usage(self)

    # ------------------------------------------------------------------
    # Fees: late cancellations and no-shows
    # ------------------------------------------------------------------

    def _waive_fee(self, reason):
        """Waive the sessions' fees still in review; the reason goes to the chatter."""
        self._check_access_therapist()
        self.env["bookconnect.fee.manager"]._waive_fees(self, reason)

    def action_mark_no_show(self):
        """The therapist marks a client who did not come as a no-show."""
        self._check_access_therapist()
        self.env["bookconnect.fee.manager"].sudo()._mark_no_shows(self.sudo(), manual=True)
        return True

    # ------------------------------------------------------------------
    # The client's view of money
    # ------------------------------------------------------------------

    def _client_tz(self):
        self.ensure_one()
        return self.partner_id.tz or self.therapist_id.tz or "UTC"

    def _client_time(self, value, tz=None, pattern="EEE d MMM y, HH:mm"):
        """``value`` (naive UTC) as the client reads it: in their time zone, named."""
        self.ensure_one()
        tz = tz or self._client_tz()
        return _(
            "%(time)s (%(tz)s)",
            time=format_datetime(self.env, value, tz=tz, dt_format=pattern),
            tz=tz,
        )

    def _cancellation_terms(self, **kwargs):
        """What cancelling costs the client (the session emails show it; see
        ``bookconnect.fee.manager._cancellation_terms``)."""
        return self.env["bookconnect.fee.manager"]._cancellation_terms(self, **kwargs)

    def _client_money_lines(self, tz=None):
        """Everything this session costs the client or gives back to them (see
        ``bookconnect.client.money``): the portal pages and the client's emails show them."""
        self.ensure_one()
        return self.env["bookconnect.client.money"]._lines(self, tz=tz)

    def _mark_in_progress(self):
        """Someone joined the call of these sessions: the scheduled ones are in progress."""
        self.filtered(lambda s: s.state == "scheduled").write({"state": "in_progress"})

    # ------------------------------------------------------------------
    # Chat sessions
    # ------------------------------------------------------------------

    def action_open_chat(self):
        """The therapist opens the session's chat: the time it is open with both present is
        what is billed."""
        self.ensure_one()
        self._check_access_therapist()
        if self.channel != "chat":
            raise UserError(_("Session %(name)s is not a chat session.", name=self.name))
        if self.state not in OPEN_STATES:
            raise UserError(_("Session %(name)s is over.", name=self.name))
        self.call_id._check_can_start()
        channel = self.env["discuss.channel"]._bookconnect_open_chat(self.sudo())
        return {
            "type": "ir.actions.act_url",
            "url": f"/odoo/discuss?active_id=discuss.channel_{channel.id}",
            "target": "self",
        }

    def action_close_chat(self):
        """The therapist closes the chat: the session ends and is invoiced."""
        self._check_access_therapist()
        for session in self.sudo().filtered("chat_open"):
            self.env["discuss.channel"]._bookconnect_announce(session, _("The session is closed."))
        self.sudo().write({"chat_open": False})
        self.sudo()._end_sessions()
        return True

    @api.model
    def _cron_sweep(self, batch_size=200):
        """End the sessions whose call is over (see the metered call's sweep candidates).
        Reports progress in batches."""
        due = self.env["bookconnect.metered.call"]._sweep_candidates(limit=batch_size + 1)
        remaining = max(len(due) - batch_size, 0)
        ended = due[:batch_size]._end_sessions(automatic=True)
        self.env["ir.cron"]._notify_progress(done=len(ended), remaining=remaining)
