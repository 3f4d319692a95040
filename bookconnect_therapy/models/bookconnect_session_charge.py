from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, float_compare

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


class BookconnectSessionCharge(models.Model):
    """One thing a session costs the client (or gives back): the booked price paid up front,
    the measured price, the settlement of one against the other, a late-cancellation or
    no-show fee, or a refund. Each charge is billed by one invoice or credit note line."""

    _name = "bookconnect.session.charge"
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

    def _lock_in_state(self, state):
        """Lock the charges still in ``state`` and return them; skip those another
        transaction holds or moved on meanwhile, so that no charge is ever billed twice."""
        if not self.ids:
            return self
        self.flush_recordset(["state"])
        self.env.cr.execute(
            SQL(
                "SELECT id FROM %s WHERE id IN %s AND state = %s FOR NO KEY UPDATE SKIP LOCKED",
                SQL.identifier(self._table),
                tuple(self.ids),
                state,
            )
        )
        ids = {row[0] for row in self.env.cr.fetchall()}
        self.invalidate_recordset(["state"])
        return self.filtered(lambda c: c.id in ids)

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
        charges = self.filtered(lambda c: c.state == "to_invoice")._lock_in_state("to_invoice")
        moves = self.env["account.move"]
        if not charges:
            return moves
        sessions = charges.session_id
        journals = sessions._sales_journals()
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
