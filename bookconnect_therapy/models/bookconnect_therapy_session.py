import logging
import uuid
from datetime import timedelta

import psycopg2

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL, format_date

from ..core import cancellation_outcome

_logger = logging.getLogger(__name__)

OPEN_STATES = ("scheduled", "in_progress")
BILLED_STATES = ("invoiced", "paid")
CHANNEL_LABELS = {"video": "Online session", "voice": "Voice session", "chat": "Chat session"}
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
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin"]
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
    stop = fields.Datetime("End", required=True, tracking=True)
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
    cancelled_at = fields.Datetime(readonly=True, copy=False)
    cancelled_by = fields.Selection(
        [("practice", "Practice"), ("client", "Client")], readonly=True, copy=False
    )
    invoice_id = fields.Many2one("account.move", readonly=True, copy=False, index=True)
    invoice_ids = fields.One2many("account.move", "bookconnect_session_id", "Invoices")
    invoice_count = fields.Integer(compute="_compute_invoice_count")
    payment_state = fields.Selection(related="invoice_id.payment_state", string="Payment")
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

    @api.depends("invoice_ids")
    def _compute_invoice_count(self):
        for session in self:
            session.invoice_count = len(session.invoice_ids)

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
        events = (
            self.env["calendar.event"]
            .sudo()
            .with_context(bookconnect_sync=True, no_mail_to_attendees=True)
            .create([session._prepare_calendar_event_values() for session in sessions])
        )
        for session, call, event in zip(sessions, calls, events, strict=True):
            session.with_context(bookconnect_sync=True).write(
                {"call_id": call.id, "calendar_event_id": event.id}
            )
        return sessions

    def write(self, vals):
        if PRICING_FIELDS & set(vals) and not self.env.context.get("bookconnect_sync"):
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
        if not self.env.context.get("bookconnect_sync") and {"start", "stop", "partner_id"} & set(
            vals
        ):
            self._sync_calendar_events()
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
        events.sudo().with_context(bookconnect_sync=True).unlink()
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

    def action_open_calendar_event(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "calendar.event",
            "res_id": self.calendar_event_id.id,
            "view_mode": "form",
        }

    def action_correct_minutes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Correct the measured time"),
            "res_model": "bookconnect.session.correct",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_session_id": self.id,
                "default_minutes": self.corrected_minutes or round(self.measured_seconds / 60),
            },
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
                raise UserError(
                    _("Only the session's therapist or a practice manager can do this.")
                )

    def _booking_requirements(self):
        """What the client must still do before this booking is confirmed, per its policy.

        :return: list of ``"card"`` (save a card: the policy charges or holds it) and
            ``"prepay"`` (pay the booked price up front).
        """
        self.ensure_one()
        policy = self.policy_id
        missing = []
        needs_card = policy.require_card or policy.prepayment == "hold"
        if needs_card and not self.partner_id._bookconnect_payment_token(self.company_id):
            missing.append("card")
        if policy.prepayment == "full" and not self.sudo().transaction_ids.filtered(
            lambda tx: tx.bookconnect_purpose == "prepay" and tx.state in ("authorized", "done")
        ):
            missing.append("prepay")
        return missing

    def _participant_partners(self):
        self.ensure_one()
        return self.therapist_id.partner_id | self.partner_id

    def _participant_role(self, partner):
        """``therapist``, ``client`` or ``False`` for anyone else (never metered)."""
        self.ensure_one()
        if partner and partner == self.therapist_id.partner_id:
            return "therapist"
        if partner and partner == self.partner_id:
            return "client"
        return False

    def _participant_partner(self, role):
        self.ensure_one()
        return self.therapist_id.partner_id if role == "therapist" else self.partner_id

    def _cancel_from_calendar(self):
        """The therapist removed the calendar event: the practice cancelled, nothing is due."""
        open_sessions = self.filtered(lambda s: s.state == "scheduled")
        started = self - open_sessions
        if started.filtered(lambda s: s.state not in ("cancelled", "late_cancelled", "no_show")):
            raise UserError(
                _(
                    "Session %(name)s has started or ended: its calendar event is kept.",
                    name=started[0].name,
                )
            )
        open_sessions._cancel(by="practice")

    def _cancellation_preview(self, now=None):
        """What cancelling now would cost the client.

        :return: dict with ``late`` (the free window has passed), ``fee`` (float, in the
            session currency), ``free_until`` (UTC datetime) and ``currency`` (res.currency).
        """
        self.ensure_one()
        now = now or fields.Datetime.now()
        policy = self.policy_id
        price = policy._price(self.duration * 60, self.channel).amount
        outcome = cancellation_outcome(
            self.start, now, policy.free_cancel_hours, policy._fee("late", price)
        )
        return {
            "late": outcome.late,
            "fee": float(outcome.fee),
            "free_until": outcome.free_until,
            "currency": self.currency_id,
        }

    def _cancel(self, by="practice"):
        """Cancel scheduled sessions. ``by``: ``practice`` (never a fee) or ``client`` (late
        cancellations follow the policy).

        :return: the sessions this call cancelled (others were no longer scheduled).
        """
        sessions = self._lock_for_update(("scheduled",))
        now = fields.Datetime.now()
        for session in sessions:
            preview = session._cancellation_preview(now) if by == "client" else {"late": False}
            state = "late_cancelled" if preview["late"] else "cancelled"
            session.with_context(bookconnect_sync=True).write(
                {"state": state, "cancelled_at": now, "cancelled_by": by}
            )
            if by == "practice":
                body = _("Session cancelled by the practice.")
            elif preview["late"]:
                body = _("Session cancelled late by the client.")
            else:
                body = _("Session cancelled by the client within the free window.")
            session.message_post(body=body)
        sessions.calendar_event_id.sudo().with_context(bookconnect_sync=True).write(
            {"active": False}
        )
        return sessions

    def action_client_cancel(self):
        """Cancel as the client (portal): free inside the policy's window, else late."""
        self.ensure_one()
        if self.state != "scheduled":
            raise UserError(_("Session %(name)s can no longer be cancelled.", name=self.name))
        return bool(self.sudo()._cancel(by="client"))

    def action_cancel(self):
        """Cancel the sessions on the practice's side (no fee)."""
        self._check_access_therapist()
        self.sudo()._cancel(by="practice")
        return True

    def _prepare_calendar_event_values(self):
        self.ensure_one()
        token = uuid.uuid4().hex
        return {
            "name": _("Therapy session: %(client)s", client=self.partner_id.name),
            "start": self.start,
            "stop": self.stop,
            "user_id": self.therapist_id.id,
            "partner_ids": [Command.set((self.therapist_id.partner_id | self.partner_id).ids)],
            "privacy": "private",
            "show_as": "busy",
            "access_token": token,
            "videocall_location": f"{self.get_base_url()}/calendar/join_videocall/{token}",
            "bookconnect_session_id": self.id,
            "res_model_id": self.env["ir.model"]._get_id(self._name),
            "res_id": self.id,
        }

    def _sync_calendar_events(self):
        for session in self.filtered("calendar_event_id"):
            values = {"start": session.start, "stop": session.stop}
            event = session.calendar_event_id.sudo()
            if session.partner_id not in event.partner_ids:
                values["partner_ids"] = [
                    Command.set((session.therapist_id.partner_id | session.partner_id).ids)
                ]
            event.with_context(bookconnect_sync=True).write(values)

    def _lock_for_update(self, states):
        """Lock the sessions still in ``states`` and return them; skip those another
        transaction holds or changed meanwhile (it is ending them)."""
        if not self.ids:
            return self.browse()
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    SQL(
                        "SELECT id FROM %s WHERE id IN %s AND state IN %s"
                        " FOR NO KEY UPDATE SKIP LOCKED",
                        SQL.identifier(self._table),
                        tuple(self.ids),
                        tuple(states),
                    )
                )
                ids = {row[0] for row in self.env.cr.fetchall()}
        except psycopg2.errors.SerializationFailure:
            _logger.info(
                "Sessions %s changed concurrently; another worker is ending them", self.ids
            )
            return self.browse()
        self.invalidate_recordset(["state"])
        return self.browse([i for i in self.ids if i in ids])

    def _end_sessions(self, automatic=False):
        """End sessions: close their calls, price them and invoice what is billable.

        Sessions not in progress or scheduled, or locked by another worker, are skipped, so
        calling this twice (or from two workers) never invoices twice.

        :param automatic: ended by the sweep rather than by the therapist: connections still
            open are closed at their last sign of life, never later than the scheduled end.
        :return: the sessions this call ended.
        """
        sessions = self._lock_for_update(OPEN_STATES)
        if not sessions:
            return sessions
        now = fields.Datetime.now()
        sessions.call_id._close_open_segments(now, automatic=automatic)
        values_by_session = sessions._compute_billing()
        for session in sessions:
            session.with_context(bookconnect_sync=True).write(
                {**values_by_session[session], "state": "done", "ended_at": now}
            )
        billable = sessions.filtered(lambda s: s.amount > 0)
        for session in sessions - billable:
            session.message_post(
                body=_(
                    "The session ended with nothing to bill (%(minutes)s billable minutes).",
                    minutes=session.billable_minutes,
                ),
            )
        billable._create_invoices()
        return sessions

    def _compute_billing(self):
        """Price each session's measurement (or the therapist's correction) under its policy.

        :return: dict session -> values to write (billable minutes, quantity, price, amount).
        """
        result = {}
        for session in self:
            seconds = (
                session.corrected_minutes * 60
                if session.corrected_by_id
                else session.call_id.billable_seconds
            )
            price = session.policy_id._price(seconds, session.channel)
            result[session] = {
                "billable_minutes": price.billable_minutes,
                "quantity": float(price.quantity),
                "unit_price": float(price.unit_price),
                "amount": float(price.amount),
                "currency_id": session.policy_id.currency_id.id,
            }
        return result

    def _invoice_line_label(self):
        self.ensure_one()
        lang = self.partner_id.lang or self.env.lang
        session = self.with_context(lang=lang)
        label = session.env._(CHANNEL_LABELS[self.channel])  # pylint: disable=translation-required
        date = format_date(
            session.env,
            fields.Datetime.context_timestamp(
                self.with_context(tz=self.partner_id.tz or self.therapist_id.tz or "UTC"),
                self.start,
            ).date(),
            lang_code=lang,
            date_format="d MMM y",
        )
        return _(
            "%(label)s — %(minutes)s min, %(date)s",
            label=label,
            minutes=self.billable_minutes,
            date=date,
        )

    def _prepare_invoice_values(self, journal):
        """Values of the customer invoice of one ended session: one neutral line."""
        self.ensure_one()
        policy = self.policy_id
        product = policy.product_id
        return {
            "move_type": "out_invoice",
            "journal_id": journal.id,
            "company_id": self.company_id.id,
            "partner_id": self.partner_id.id,
            "currency_id": self.currency_id.id,
            "invoice_date": fields.Date.context_today(self),
            "invoice_origin": self.name,
            "bookconnect_session_id": self.id,
            "bookconnect_kind": "session",
            "invoice_line_ids": [
                Command.create(
                    {
                        "product_id": product.id,
                        "name": self._invoice_line_label(),
                        "quantity": self.quantity,
                        "product_uom_id": product.uom_id.id,
                        "price_unit": self.unit_price,
                    }
                )
            ],
        }

    def _sales_journals(self):
        """The sales journal of each company of ``self``, found in one search."""
        journals = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "in", self.company_id.ids)],
            order="sequence, id",
        )
        by_company = {}
        for journal in journals:
            by_company.setdefault(journal.company_id, journal)
        missing = self.company_id - self.env["res.company"].concat(*by_company)
        if missing:
            raise UserError(
                _(
                    "Company %(company)s has no sales journal to invoice sessions in.",
                    company=missing[0].name,
                )
            )
        return by_company

    def _create_invoices(self):
        """Create, post and send the invoices of ended sessions, in one batch."""
        if not self:
            return self.env["account.move"]
        journals = self._sales_journals()
        invoices = (
            self.env["account.move"]
            .with_context(default_move_type="out_invoice", tracking_disable=True)
            .create(
                [session._prepare_invoice_values(journals[session.company_id]) for session in self]
            )
        )
        invoices.action_post()
        by_session = {invoice.bookconnect_session_id: invoice for invoice in invoices}
        for session in self:
            session.with_context(bookconnect_sync=True).write(
                {"invoice_id": by_session[session].id, "state": "invoiced"}
            )
        invoices._bookconnect_send()
        self._after_invoices_posted(invoices)
        return invoices

    def _after_invoices_posted(self, invoices):
        """Hook run after session invoices are posted and queued for sending (collection)."""
        return invoices

    def _mark_paid(self):
        self.filtered(lambda s: s.state == "invoiced").with_context(bookconnect_sync=True).write(
            {"state": "paid"}
        )

    def _set_correction(self, minutes, reason):
        """Record a therapist's correction of the measured time, with who and why."""
        self._check_access_therapist()
        if minutes < 0:
            raise ValidationError(_("Corrected minutes cannot be negative."))
        if not (reason or "").strip():
            raise ValidationError(_("Say why the measured time is corrected."))
        for session in self:
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
            session.sudo().with_context(bookconnect_sync=True).write(
                {
                    "corrected_minutes": minutes,
                    "correction_reason": reason.strip(),
                    "corrected_by_id": self.env.user.id,
                }
            )
            if session.state == "done":
                session.sudo().write(session._compute_billing()[session])
            session.message_post(
                body=_(
                    "%(user)s corrected the measured time from %(before)s to %(after)s min: "
                    "%(reason)s",
                    user=self.env.user.name,
                    before=before,
                    after=minutes,
                    reason=reason.strip(),
                ),
                author_id=self.env.user.partner_id.id,
            )

    def _replay_external_events(self, events):
        """Record a list of external events ``(event id, kind, role, minutes after the start)``
        on one session, as the video service would post them (demo data, support scripts)."""
        self.ensure_one()
        for uid, kind, role, minutes in events:
            self.call_id._record_external_event(
                uid, kind, role, self.start + timedelta(minutes=minutes)
            )

    @api.model
    def _cron_sweep(self, batch_size=200):
        """End the sessions whose call is over: both participants gone for the company's
        delay, or still open long after the scheduled end. Reports progress in batches."""
        now = fields.Datetime.now()
        self.env["bookconnect.metered.call"]._collect_dead_discuss_sessions()
        domain = []
        for company in self.env["res.company"].sudo().search([]):
            gone_before = now - timedelta(minutes=company.bookconnect_auto_end_minutes)
            overdue_before = now - timedelta(minutes=company.bookconnect_overdue_end_minutes)
            domain.append(
                [
                    ("company_id", "=", company.id),
                    ("state", "=", "in_progress"),
                    "|",
                    "&",
                    ("call_id.live", "=", False),
                    ("call_id.last_activity_at", "<", gone_before),
                    ("stop", "<", overdue_before),
                ]
            )
        if not domain:
            return
        due = self.sudo().search(expression.OR(domain), limit=batch_size + 1, order="stop, id")
        remaining = max(len(due) - batch_size, 0)
        ended = due[:batch_size]._end_sessions(automatic=True)
        self.env["ir.cron"]._notify_progress(done=len(ended), remaining=remaining)
