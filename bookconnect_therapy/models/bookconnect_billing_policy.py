from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_amount

from ..core import InvalidRules, PricingRules, fee_amount, parse_positive_ints, price_duration
from .bookconnect_policy_terms import SUMMARY_FIELDS

FEE_KINDS = [
    ("none", "No fee"),
    ("fixed", "Fixed amount"),
    ("percent", "Share of the session price"),
]
# Amounts and durations a policy cannot have below zero.
NOT_NEGATIVE = (
    "rate",
    "rate_voice",
    "rate_chat",
    "charge_floor",
    "minimum_balance",
    "late_fee_fixed",
    "no_show_fee_fixed",
    "grace_minutes",
    "minimum_minutes",
    "maximum_minutes",
    "free_cancel_hours",
    "cancel_grace_minutes",
    "no_show_delay_minutes",
    "review_hours",
    "hold_hours_before",
    "low_balance_warning_minutes",
)
MODE_PRODUCT_XMLIDS = {
    "session": "bookconnect_therapy.product_online_session",
    "hour": "bookconnect_therapy.product_online_hour",
    "minute": "bookconnect_therapy.product_online_minute",
}


class BookconnectBillingPolicy(models.Model):
    _name = "bookconnect.billing.policy"
    _description = "Therapy billing policy"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        tracking=True,
        default=lambda self: self.env.company.currency_id,
    )

    # Pricing
    mode = fields.Selection(
        [("session", "Per session"), ("hour", "Per hour"), ("minute", "Per minute")],
        required=True,
        default="session",
        tracking=True,
    )
    rate = fields.Monetary(
        required=True, tracking=True, help="Price of one session, one hour or one minute."
    )
    session_minutes = fields.Integer(
        "Session length (min)",
        default=50,
        help="How long a session booked in the back office lasts: its end is set from its start.",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Invoiced product",
        required=True,
        check_company=True,
        compute="_compute_product_id",
        store=True,
        precompute=True,
        readonly=False,
        domain=[("type", "=", "service")],
        help="Product of the invoice line: its taxes and income account apply. Per minute it must "
        "be counted in Minutes, per hour in Hours (Working Time units).",
    )
    channel_rates = fields.Boolean(
        "Rate per channel",
        help="Voice and chat sessions have their own rates; video uses the rate.",
    )
    rate_voice = fields.Monetary("Voice rate")
    rate_chat = fields.Monetary("Chat rate")

    # Metering
    grace_minutes = fields.Integer(
        "Grace period (min)", help="A call shorter than this is not billed (connection trouble)."
    )
    rounding_increment = fields.Integer(
        "Round to (min)", default=1, help="Billed minutes are a multiple of this many minutes."
    )
    rounding_method = fields.Selection(
        [("up", "Up"), ("half_up", "To the nearest (half up)"), ("down", "Down")],
        required=True,
        default="up",
    )
    minimum_minutes = fields.Integer("Minimum billed (min)")
    maximum_minutes = fields.Integer(
        "Cap (min)", help="Most minutes billed for one call; 0: no cap."
    )

    # Collection
    collection = fields.Selection(
        [
            ("card", "Charge the saved card after the session"),
            ("portal", "Send the invoice for online payment"),
        ],
        required=True,
        default="card",
        tracking=True,
    )
    require_card = fields.Boolean(
        "Card required to book", help="A client must have a saved card before booking."
    )
    prepayment = fields.Selection(
        [
            ("none", "None"),
            ("hold", "Hold the expected amount on the card"),
            ("full", "Pay in full at booking"),
            ("balance", "Prepaid balance, drawn down by the minute"),
        ],
        required=True,
        default="none",
        tracking=True,
    )
    hold_hours_before = fields.Integer(
        "Place the hold (h before)", default=24, help="Hours before the start the hold is placed."
    )
    charge_floor = fields.Monetary(
        "Smallest charge",
        help="Amounts below this (or below the provider's minimum) wait for the client's "
        "next charge.",
    )
    minimum_balance = fields.Monetary(help="A session cannot start with a smaller prepaid balance.")
    low_balance_warning_minutes = fields.Integer("Warn before (min)", default=5)
    overrun = fields.Selection(
        [
            ("end", "End the call and invoice what was used"),
            ("card", "Let it run, charge the overrun to the card"),
            ("invoice", "Let it run, send the overrun as an invoice"),
        ],
        string="When the balance runs out",
        required=True,
        default="end",
    )

    # Cancellation and no-show
    free_cancel_hours = fields.Integer(
        "Free cancellation until (h before)", default=24, tracking=True
    )
    cancel_grace_minutes = fields.Integer(
        "Free cancellation after booking (min)",
        tracking=True,
        help="A session booked inside the free-cancellation window (or just before it) can "
        "still be cancelled free for this many minutes after it was booked, never past its "
        "start. 0: booking inside the window makes cancelling cost the fee at once.",
    )
    late_fee_kind = fields.Selection(
        FEE_KINDS,
        "Late cancellation fee",
        required=True,
        default="fixed",
        tracking=True,
    )
    late_fee_fixed = fields.Monetary("Late cancellation amount")
    late_fee_percent = fields.Float("Late cancellation share (%)", default=50.0)
    no_show_delay_minutes = fields.Integer(
        "No-show after (min)", default=15, help="A client who has not joined by then is a no-show."
    )
    no_show_fee_kind = fields.Selection(
        FEE_KINDS,
        "No-show fee",
        required=True,
        default="percent",
        tracking=True,
    )
    no_show_fee_fixed = fields.Monetary("No-show amount")
    no_show_fee_percent = fields.Float("No-show share (%)", default=100.0)
    review_hours = fields.Integer(
        "Review window (h)",
        default=24,
        help="Fees are charged only after this many hours, in which the therapist can waive them.",
    )
    waive_first_offence = fields.Boolean(
        "Waive the first offence",
        help="The first late cancellation or no-show of a client is free.",
    )

    # Reminders
    reminder_hours = fields.Char(
        help="Hours before the start to remind the client, comma separated (e.g. 24,1). "
        "Empty: the practice's default."
    )

    # Price preview on the form
    preview_minutes = fields.Integer("Minutes", default=50, copy=False)
    preview_amount = fields.Monetary("Amount", compute="_compute_preview")
    preview_error = fields.Char(compute="_compute_preview")
    client_summary = fields.Text("In plain words", compute="_compute_client_summary")

    # ------------------------------------------------------------------
    # Constraints
    # ------------------------------------------------------------------

    @api.constrains(*NOT_NEGATIVE)
    def _check_not_negative(self):
        labels = self._fields
        for policy in self:
            for name in NOT_NEGATIVE:
                if policy[name] < 0:
                    raise ValidationError(
                        _(
                            "Policy %(policy)s: %(field)s cannot be negative.",
                            policy=policy.name,
                            field=labels[name]._description_string(self.env),
                        )
                    )

    @api.constrains(
        "rounding_increment",
        "minimum_minutes",
        "maximum_minutes",
        "hold_hours_before",
        "session_minutes",
    )
    def _check_durations(self):
        for policy in self:
            if not 5 <= policy.session_minutes <= 720:
                raise ValidationError(
                    _(
                        "Policy %(policy)s: a session lasts 5 to 720 minutes.",
                        policy=policy.name,
                    )
                )
            if policy.rounding_increment < 1:
                raise ValidationError(
                    _(
                        "Policy %(policy)s: billed minutes are rounded to at least 1 minute.",
                        policy=policy.name,
                    )
                )
            if policy.maximum_minutes and policy.maximum_minutes < policy.minimum_minutes:
                raise ValidationError(
                    _(
                        "Policy %(policy)s: the cap (%(cap)s min) is below the minimum "
                        "(%(min)s min).",
                        policy=policy.name,
                        cap=policy.maximum_minutes,
                        min=policy.minimum_minutes,
                    )
                )
            if policy.hold_hours_before > 24 * 6:
                raise ValidationError(
                    _(
                        "Policy %(policy)s: a card hold lasts about 7 days; place it at most "
                        "6 days (144 hours) before the session.",
                        policy=policy.name,
                    )
                )

    @api.constrains("late_fee_percent", "no_show_fee_percent")
    def _check_percentages(self):
        for policy in self:
            for value in (policy.late_fee_percent, policy.no_show_fee_percent):
                if not 0 <= value <= 100:
                    raise ValidationError(
                        _(
                            "Policy %(policy)s: a fee share is between 0 and 100%%.",
                            policy=policy.name,
                        )
                    )

    @api.constrains("mode", "product_id")
    def _check_product_unit(self):
        minute = self.env.ref("bookconnect_therapy.uom_minute", raise_if_not_found=False)
        hour = self.env.ref("uom.product_uom_hour")
        for policy in self:
            unit = policy.product_id.uom_id
            if policy.mode == "minute" and minute and unit != minute:
                raise ValidationError(
                    _(
                        "Policy %(policy)s bills per minute: its product must be counted in "
                        "Minutes, not %(unit)s.",
                        policy=policy.name,
                        unit=unit.name,
                    )
                )
            if policy.mode == "hour" and unit != hour:
                raise ValidationError(
                    _(
                        "Policy %(policy)s bills per hour: its product must be counted in Hours, "
                        "not %(unit)s.",
                        policy=policy.name,
                        unit=unit.name,
                    )
                )

    @api.constrains("prepayment", "mode", "collection")
    def _check_prepayment(self):
        for policy in self:
            if policy.prepayment == "balance" and policy.mode == "session":
                raise ValidationError(
                    _(
                        "Policy %(policy)s: a prepaid balance is drawn down by the minute or the "
                        "hour, not per session.",
                        policy=policy.name,
                    )
                )

    @api.constrains("reminder_hours")
    def _check_reminder_hours(self):
        for policy in self:
            try:
                policy._reminder_hours()
            except ValueError as exc:
                raise ValidationError(
                    _(
                        "Policy %(policy)s: reminder hours are whole numbers separated by commas, "
                        "e.g. 24,1 (%(error)s).",
                        policy=policy.name,
                        error=exc,
                    )
                ) from exc

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------

    @api.depends("mode")
    def _compute_product_id(self):
        for policy in self:
            wanted = self.env.ref(MODE_PRODUCT_XMLIDS[policy.mode], raise_if_not_found=False)
            if (wanted and policy.product_id.uom_id != wanted.uom_id) or not policy.product_id:
                policy.product_id = wanted

    @api.depends(
        "preview_minutes",
        "mode",
        "rate",
        "currency_id",
        "grace_minutes",
        "rounding_increment",
        "rounding_method",
        "minimum_minutes",
        "maximum_minutes",
    )
    def _compute_preview(self):
        for policy in self:
            policy.preview_amount = 0.0
            policy.preview_error = False
            try:
                price = price_duration(max(policy.preview_minutes, 0) * 60, policy._pricing_rules())
            except InvalidRules as exc:
                policy.preview_error = str(exc)
                continue
            policy.preview_amount = float(price.amount)

    @api.depends_context("lang")
    @api.depends(*SUMMARY_FIELDS)
    def _compute_client_summary(self):
        for policy in self:
            policy.client_summary = policy._client_summary()

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------

    def _channel_rate(self, channel="video"):
        self.ensure_one()
        if self.channel_rates and channel == "voice":
            return self.rate_voice
        if self.channel_rates and channel == "chat":
            return self.rate_chat
        return self.rate

    def _pricing_rules(self, channel="video"):
        """Return the engine's :class:`PricingRules` for this policy and a channel."""
        self.ensure_one()
        currency = self.currency_id or self.env.company.currency_id
        return PricingRules(
            mode=self.mode,
            rate=currency.round(self._channel_rate(channel)),
            currency_rounding=currency.rounding,
            grace_minutes=self.grace_minutes,
            rounding_increment=self.rounding_increment or 1,
            rounding_method=self.rounding_method,
            minimum_minutes=self.minimum_minutes,
            maximum_minutes=self.maximum_minutes,
            quantity_digits=self.env["decimal.precision"].precision_get("Product Unit of Measure"),
        )

    def _price(self, seconds, channel="video"):
        """Price a measured duration (seconds) under this policy: an engine ``Price``."""
        return price_duration(int(seconds), self._pricing_rules(channel))

    def _fee(self, kind, session_price):
        """Return the late-cancellation (``kind='late'``) or no-show fee for a session price."""
        self.ensure_one()
        prefix = "late_fee" if kind == "late" else "no_show_fee"
        return fee_amount(
            self[f"{prefix}_kind"],
            self[f"{prefix}_fixed"],
            self[f"{prefix}_percent"],
            session_price,
            self.currency_id.rounding,
        )

    def _client_summary(self, lang=None):
        """The policy in plain words for clients, in ``lang`` (the client's language): what a
        session costs, when and how it is paid, and what cancelling or missing it costs.

        :return: whole sentences, one a line.
        """
        if not self:
            return ""
        self.ensure_one()
        policy = self.with_context(lang=lang or self.env.lang)
        currency = policy.currency_id or policy.env.company.currency_id

        def money(amount):
            return format_amount(policy.env, amount, currency, lang_code=lang)

        return "\n".join(policy.env["bookconnect.policy.terms"]._sentences(policy, money))

    def _reminder_hours(self):
        """Return the reminder offsets in hours, largest first; ``[]`` when not set.

        :raise ValueError: on anything else than comma-separated positive whole numbers.
        """
        self.ensure_one()
        return parse_positive_ints(self.reminder_hours)
