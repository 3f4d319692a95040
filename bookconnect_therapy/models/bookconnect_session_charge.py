from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, float_compare, format_date

CHARGE_KINDS = [
    ("booked", "Booked price, paid in advance"),
    ("usage", "Session"),
    ("difference", "Difference to the pre-payment"),
    ("late_cancel", "Late cancellation fee"),
    ("no_show", "No-show fee"),
    ("refund", "Refund"),
]
FEE_KINDS = ("late_cancel", "no_show")
# What the session itself costs: the invoice a card hold pays and whose payment pays the session.
SESSION_KINDS = ("booked", "usage")
CHANNEL_LABELS = {"video": "Online session", "voice": "Voice session", "chat": "Chat session"}


class BookconnectSessionCharge(models.Model):
    """One thing a session costs the client (or gives back): the booked price paid up front,
    the measured price, the settlement of one against the other, a late-cancellation or
    no-show fee, or a refund. Each charge is billed by one invoice or credit note line."""

    _name = "bookconnect.session.charge"
    _inherit = ["bookconnect.lock.mixin"]
    _description = "Therapy session charge"
    _order = "session_id, id"
    _check_company_auto = True

    session_id = fields.Many2one(
        "bookconnect.therapy.session", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="session_id.company_id", store=True)
    therapist_id = fields.Many2one(related="session_id.therapist_id", store=True)
    partner_id = fields.Many2one(related="session_id.partner_id", store=True, index=True)
    currency_id = fields.Many2one(related="session_id.currency_id", store=True)
    kind = fields.Selection(CHARGE_KINDS, required=True, readonly=True)
    description = fields.Char(
        readonly=True, help="The invoice line's label, or why it is given back."
    )
    quantity = fields.Float(default=1.0, readonly=True, digits="Product Unit of Measure")
    price_unit = fields.Float(readonly=True, digits="Product Price")
    amount = fields.Monetary(
        readonly=True, help="Before taxes; negative for what is given back to the client."
    )
    state = fields.Selection(
        [
            ("review", "In review"),
            ("to_invoice", "To invoice"),
            ("invoiced", "Invoiced"),
            ("paid", "Paid"),
            ("waived", "Waived"),
            ("cancelled", "Cancelled"),
        ],
        default="to_invoice",
        required=True,
        readonly=True,
        index=True,
    )
    due_at = fields.Datetime(
        "Invoiced after", readonly=True, help="A fee: the end of its review window."
    )
    waiver_reason = fields.Char(readonly=True)
    refunded_move_id = fields.Many2one(
        "account.move", "Refunds invoice", readonly=True, help="The invoice a credit note refunds."
    )
    move_line_id = fields.Many2one("account.move.line", readonly=True, copy=False, index=True)
    move_id = fields.Many2one(
        "account.move",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The invoice or credit note that bills it (or, for a fee kept from an advance "
        "payment, the invoice that paid it).",
    )

    def init(self):
        # A session is billed once per kind, whatever the number of workers or retries.
        self.env.cr.execute(
            SQL(
                """
                CREATE UNIQUE INDEX IF NOT EXISTS bookconnect_session_charge_kind_uniq
                    ON bookconnect_session_charge (session_id, kind)
                 WHERE kind != 'refund' AND state != 'cancelled'
                """
            )
        )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if "amount" not in vals:
                vals["amount"] = vals.get("quantity", 1.0) * vals.get("price_unit", 0.0)
            vals.setdefault("price_unit", vals["amount"])
        return super().create(vals_list)

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------

    @api.model
    def _prepare_refund_values(self, invoice, amount, reason):
        """Values of a refund charge giving back ``amount`` (taxes included) of ``invoice``.

        :raise UserError: when the amount is not positive or exceeds what can be refunded.
        """
        currency = invoice.currency_id
        refunded = sum(
            invoice.reversal_move_ids.filtered(lambda m: m.state == "posted").mapped("amount_total")
        )
        refundable = currency.round(invoice.amount_total - refunded)
        if float_compare(amount, 0, precision_rounding=currency.rounding) <= 0:
            raise UserError(_("The amount to refund must be positive."))
        if float_compare(amount, refundable, precision_rounding=currency.rounding) > 0:
            raise UserError(
                _(
                    "At most %(amount)s of invoice %(invoice)s can still be refunded.",
                    amount=currency.format(refundable),
                    invoice=invoice.name,
                )
            )
        # The price that gives ``amount`` once the invoice's taxes are added.
        untaxed = sum(invoice.invoice_line_ids.mapped("price_subtotal"))
        share = amount / invoice.amount_total if invoice.amount_total else 0.0
        return {
            "session_id": invoice.bookconnect_session_id.id,
            "kind": "refund",
            "amount": -currency.round(untaxed * share),
            "description": reason,
            "refunded_move_id": invoice.id,
        }

    def _prepare_invoice_line(self):
        """Values of the invoice (or credit note) line that bills this charge."""
        self.ensure_one()
        product = self.session_id.policy_id.product_id
        values = {
            "product_id": product.id,
            "product_uom_id": product.uom_id.id,
            "name": self.description,
            "quantity": self.quantity,
            "price_unit": self.price_unit,
            "bookconnect_charge_id": self.id,
        }
        if self.amount < 0:
            refunded = self.refunded_move_id.invoice_line_ids[:1]
            values.update(
                name=_("Refund: %(label)s", label=refunded.name or self.description),
                quantity=1,
                price_unit=-self.amount,
            )
            if refunded:
                values.update(
                    product_id=refunded.product_id.id,
                    product_uom_id=refunded.product_id.uom_id.id,
                    tax_ids=[Command.set(refunded.tax_ids.ids)],
                )
        return values

    def _create_invoices(self, notify_refunds=True):
        """Bill the charges to invoice: positive ones on customer invoices, negative ones on
        credit notes of the invoice they refund, one document per session (and refunded
        invoice), all created at once, posted, then sent and collected (see
        ``account.move._bookconnect_post_and_send``).

        The only place where session invoices and credit notes are made.

        :param notify_refunds: email the client about the credit notes (off when another
            email already tells them, like the cancellation's).
        :return: the posted invoices and credit notes.
        """
        charges = self.filtered(lambda c: c.state == "to_invoice")._lock_in_states(("to_invoice",))
        moves = self.env["account.move"]
        if not charges:
            return moves
        sessions = charges.session_id
        journals = self._sales_journals(sessions)
        groups = {}
        for charge in charges:
            negative = charge.currency_id.compare_amounts(charge.amount, 0) < 0
            key = (charge.session_id, charge.refunded_move_id if negative else False)
            groups.setdefault(key, self.browse())
            groups[key] |= charge
        values = []
        for (session, refunded), group in groups.items():
            move_type = "out_refund" if refunded is not False else "out_invoice"
            invoice = session._prepare_invoice(journals[session.company_id], move_type=move_type)
            if refunded is not False:
                invoice.update(
                    reversed_entry_id=refunded.id,
                    journal_id=refunded.journal_id.id or invoice["journal_id"],
                    invoice_user_id=refunded.invoice_user_id.id or invoice["invoice_user_id"],
                    ref="; ".join(group.mapped("description")),
                )
            invoice["invoice_line_ids"] = [
                Command.create(charge._prepare_invoice_line()) for charge in group
            ]
            values.append(invoice)
        moves = (
            self.env["account.move"]
            .with_context(default_move_type="out_invoice", tracking_disable=True)
            .create(values)
        )
        for line in moves.invoice_line_ids.filtered("bookconnect_charge_id"):
            line.bookconnect_charge_id.write(
                {"state": "invoiced", "move_line_id": line.id, "move_id": line.move_id.id}
            )
        moves._bookconnect_post_and_send(notify_refunds=notify_refunds)
        return moves

    # ------------------------------------------------------------------
    # Charges of sessions
    # ------------------------------------------------------------------

    @api.model
    def _prepare_billing_values(self, sessions):
        """Price each session's measurement (or the therapist's correction) under its policy.

        :return: dict session -> values to write (billable minutes, quantity, price, amount).
        """
        result = {}
        for session in sessions:
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

    @api.model
    def _invoice_line_label(self, session, minutes=None, suffix=""):
        """The invoice line text of ``session``, in the client's language and time zone."""
        lang = session.partner_id.lang or self.env.lang
        label = session.with_context(lang=lang).env._(CHANNEL_LABELS[session.channel])  # pylint: disable=translation-required
        date = format_date(
            self.env,
            fields.Datetime.context_timestamp(
                session.with_context(tz=session.partner_id.tz or session.therapist_id.tz or "UTC"),
                session.start,
            ).date(),
            lang_code=lang,
            date_format="d MMM y",
        )
        text = _(
            "%(label)s — %(minutes)s min, %(date)s",
            label=label,
            minutes=session.billable_minutes if minutes is None else minutes,
            date=date,
        )
        return f"{text} {suffix}".strip()

    @api.model
    def _prepare_usage_charge(self, session):
        """Values of the charge of the session's priced measurement (or correction)."""
        return {
            "session_id": session.id,
            "kind": "usage",
            "quantity": session.quantity,
            "price_unit": session.unit_price,
            "amount": session.amount,
            "description": self._invoice_line_label(session),
        }

    @api.model
    def _prepare_booked_charge(self, session):
        """Values of the charge of the booked duration's price, paid in advance."""
        price = session.policy_id._price(session.duration * 60, session.channel)
        return {
            "session_id": session.id,
            "kind": "booked",
            "quantity": float(price.quantity),
            "price_unit": float(price.unit_price),
            "amount": float(price.amount),
            "description": self._invoice_line_label(
                session, minutes=price.billable_minutes, suffix=_("(booked, paid in advance)")
            ),
        }

    @api.model
    def _sales_journals(self, sessions):
        """The sales journal of each company of ``sessions``, found in one search."""
        journals = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "in", sessions.company_id.ids)],
            order="sequence, id",
        )
        by_company = {}
        for journal in journals:
            by_company.setdefault(journal.company_id, journal)
        missing = sessions.company_id - self.env["res.company"].concat(*by_company)
        if missing:
            raise UserError(
                _(
                    "Company %(company)s has no sales journal to invoice sessions in.",
                    company=missing[0].name,
                )
            )
        return by_company

    @api.model
    def _invoice_booked(self, sessions):
        """Invoice the booked price of ``sessions`` (paid in advance), once per session.

        :return: the invoices made.
        """
        sessions = sessions.filtered(
            lambda s: not s.charge_ids.filtered(lambda c: c.kind == "booked")
        )
        return self.create([self._prepare_booked_charge(s) for s in sessions])._create_invoices()

    @api.model
    def _invoice_usage(self, sessions):
        """Invoice priced sessions their measured price, through their usage charge."""
        return self.create([self._prepare_usage_charge(s) for s in sessions])._create_invoices()

    @api.model
    def _settle_upfront(self, sessions):
        """Settle ended sessions that were paid for up front against what they measured:
        a shorter session is refunded the difference (credit note and card refund), a
        longer one is invoiced (and charged) the extra."""
        values = []
        for session in sessions:
            invoice = session.invoice_id
            booked = invoice.amount_untaxed
            currency = session.currency_id
            difference = currency.round(session.amount - booked)
            if currency.is_zero(difference):
                continue
            if difference < 0 and invoice.state == "posted":
                share = -difference / booked if booked else 1.0
                refund = self._prepare_refund_values(
                    invoice,
                    currency.round(invoice.amount_total * share),
                    _("Shorter than booked: %(minutes)s min", minutes=session.billable_minutes),
                )
                values.append({**refund, "kind": "difference"})
            elif difference > 0:
                values.append(
                    {
                        "session_id": session.id,
                        "kind": "difference",
                        "amount": difference,
                        "description": self._invoice_line_label(
                            session, suffix=_("(beyond the time paid in advance)")
                        ),
                    }
                )
        return self.create(values)._create_invoices()

    @api.model
    def _refund_session(self, session, amount, reason):
        """Refund ``amount`` (taxes included) of the session's invoice: credit note plus
        refund of what was paid by card, noted in the session's chatter as the current user.

        :return: the credit note.
        """
        if not (reason or "").strip():
            raise ValidationError(_("Say why the session is refunded."))
        invoice = session.sudo().invoice_id
        if not invoice or invoice.state != "posted":
            raise UserError(
                _("Session %(name)s has no posted invoice to refund.", name=session.name)
            )
        credit_note = self.create(
            self._prepare_refund_values(invoice, amount, reason)
        )._create_invoices()
        session.message_post(
            body=_(
                "%(user)s refunded %(amount)s: %(reason)s (credit note %(note)s)",
                user=session.env.user.name,
                amount=credit_note.currency_id.format(credit_note.amount_total),
                reason=reason,
                note=credit_note.name,
            )
        )
        return credit_note

    @api.model
    def _release_prepayments(self, sessions):
        """Nothing is owed for ``sessions``: void their card holds, refund what was paid in
        advance (or cancel it with a credit note when it was not paid yet). The caller's own
        email tells the client about the refund."""
        refunds = []
        for session in sessions:
            hold = self.env["bookconnect.card.hold"].sudo()._active(session)
            if hold:
                self.env["bookconnect.card.hold"].sudo()._void(hold)
            invoice = session.sudo().invoice_id
            if invoice.state == "posted":
                refundable = invoice.amount_total - sum(
                    invoice.reversal_move_ids.filtered(lambda m: m.state == "posted").mapped(
                        "amount_total"
                    )
                )
                if not invoice.currency_id.is_zero(refundable):
                    refunds.append(
                        self._prepare_refund_values(
                            invoice, refundable, _("Session cancelled in time")
                        )
                    )
        self.sudo().create(refunds)._create_invoices(notify_refunds=False)
