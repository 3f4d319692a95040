from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_amount

from ..core import InvalidRules, PricingRules, fee_amount, parse_positive_ints, price_duration

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
# What the policy in plain words is made of: everything that changes what the client pays,
# when, or what they must do to book.
SUMMARY_FIELDS = (
    "mode",
    "rate",
    "currency_id",
    "channel_rates",
    "rate_voice",
    "rate_chat",
    "grace_minutes",
    "rounding_increment",
    "rounding_method",
    "minimum_minutes",
    "maximum_minutes",
    "collection",
    "require_card",
    "prepayment",
    "hold_hours_before",
    "charge_floor",
    "minimum_balance",
    "overrun",
    "free_cancel_hours",
    "cancel_grace_minutes",
    "late_fee_kind",
    "late_fee_fixed",
    "late_fee_percent",
    "no_show_delay_minutes",
    "no_show_fee_kind",
    "no_show_fee_fixed",
    "no_show_fee_percent",
    "review_hours",
    "waive_first_offence",
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

        return "\n".join(policy._client_summary_sentences(policy, money))

    @api.model
    def _client_summary_sentences(self, terms, money):
        """The sentences of the plain-words summary, in this environment's language.

        Every term is a whole sentence to translate (translators may reorder it), and only
        the terms that apply to these options are said.

        :param terms: the policy, or any object with its fields as attributes (the options in
            ``SUMMARY_FIELDS``).
        :param money: ``money(amount)``, the amount formatted in the policy's currency.
        :return: list of sentences.
        """
        return [
            *self._summary_price_sentences(terms, money),
            *self._summary_payment_sentences(terms, money),
            *self._summary_cancellation_sentences(terms, money),
        ]

    @api.model
    def _summary_price_sentences(self, terms, money):
        env = self.env
        rate = money(terms.rate)
        if terms.channel_rates:
            voice, chat = money(terms.rate_voice), money(terms.rate_chat)
            price = {
                "session": env._(
                    "A session costs %(rate)s by video, %(voice)s by voice and %(chat)s by chat.",
                    rate=rate,
                    voice=voice,
                    chat=chat,
                ),
                "hour": env._(
                    "Sessions cost %(rate)s an hour by video, %(voice)s an hour by voice and "
                    "%(chat)s an hour by chat.",
                    rate=rate,
                    voice=voice,
                    chat=chat,
                ),
                "minute": env._(
                    "Sessions cost %(rate)s a minute by video, %(voice)s a minute by voice and "
                    "%(chat)s a minute by chat.",
                    rate=rate,
                    voice=voice,
                    chat=chat,
                ),
            }[terms.mode]
        else:
            price = {
                "session": env._("A session costs %(rate)s.", rate=rate),
                "hour": env._("Sessions cost %(rate)s an hour.", rate=rate),
                "minute": env._("Sessions cost %(rate)s a minute.", rate=rate),
            }[terms.mode]
        sentences = [price]
        timed = terms.mode != "session"
        if timed:
            increment = terms.rounding_increment or 1
            if increment == 1:
                sentences.append(
                    {
                        "up": env._("Every started minute is billed."),
                        "down": env._("Only whole minutes are billed."),
                        "half_up": env._("Time is billed to the nearest minute."),
                    }[terms.rounding_method]
                )
            else:
                sentences.append(
                    {
                        "up": env._(
                            "Time is billed in steps of %(minutes)s minutes, rounded up.",
                            minutes=increment,
                        ),
                        "down": env._(
                            "Time is billed in steps of %(minutes)s minutes, rounded down.",
                            minutes=increment,
                        ),
                        "half_up": env._(
                            "Time is billed in steps of %(minutes)s minutes, rounded to the "
                            "nearest step.",
                            minutes=increment,
                        ),
                    }[terms.rounding_method]
                )
        if terms.grace_minutes:
            sentences.append(
                env._(
                    "A call shorter than %(minutes)s minutes is not billed.",
                    minutes=terms.grace_minutes,
                )
            )
        if timed and terms.minimum_minutes:
            sentences.append(
                env._(
                    "Each call is billed for at least %(minutes)s minutes.",
                    minutes=terms.minimum_minutes,
                )
            )
        if timed and terms.maximum_minutes:
            sentences.append(
                env._(
                    "No call is billed for more than %(minutes)s minutes.",
                    minutes=terms.maximum_minutes,
                )
            )
        return sentences

    @api.model
    def _summary_payment_sentences(self, terms, money):
        env = self.env
        by_card = terms.collection == "card"
        timed = terms.mode != "session"
        prepayment = terms.prepayment
        sentences = []
        if prepayment == "none":
            sentences.append(
                env._("After each session, the amount is charged to your saved card.")
                if by_card
                else env._("After each session, you receive an invoice to pay online.")
            )
        elif prepayment == "full":
            sentences.append(
                env._(
                    "When you book, you pay for the booked time in full: it is charged to your "
                    "saved card."
                )
                if by_card
                else env._("When you book, you pay for the booked time in full, online.")
            )
            if timed:
                sentences.append(
                    env._(
                        "If the call is shorter, the difference is refunded; extra time is "
                        "charged to your saved card."
                    )
                    if by_card
                    else env._(
                        "If the call is shorter, the difference is refunded; extra time is "
                        "invoiced to pay online."
                    )
                )
        elif prepayment == "hold":
            sentences.append(
                env._(
                    "%(hours)s hours before the session, the expected amount is held on your "
                    "saved card; after the session, only what you used is taken and the rest "
                    "is released.",
                    hours=terms.hold_hours_before,
                )
            )
            if timed:
                sentences.append(
                    env._("Time beyond the held amount is charged to your saved card.")
                    if by_card
                    else env._("Time beyond the held amount is invoiced to pay online.")
                )
        else:
            sentences.append(env._("Sessions are paid from your prepaid balance as you talk."))
            if terms.minimum_balance > 0:
                sentences.append(
                    env._(
                        "A session can start only with at least %(amount)s on your balance.",
                        amount=money(terms.minimum_balance),
                    )
                )
            if terms.overrun == "end":
                sentences.append(env._("When your balance runs out, the call ends."))
            elif terms.overrun == "card" and by_card:
                sentences.append(
                    env._(
                        "When your balance runs out, the call goes on and the extra time is "
                        "charged to your saved card."
                    )
                )
            else:
                sentences.append(
                    env._(
                        "When your balance runs out, the call goes on and the extra time is "
                        "invoiced to pay online."
                    )
                )
        charged_by_card = by_card and (
            prepayment in ("none", "full")
            or (prepayment == "hold" and timed)
            or (prepayment == "balance" and terms.overrun == "card")
        )
        if charged_by_card and terms.charge_floor > 0:
            sentences.append(
                env._(
                    "Amounts under %(amount)s are not charged on their own: they are added to "
                    "your next card payment.",
                    amount=money(terms.charge_floor),
                )
            )
        if terms.require_card or prepayment == "hold":
            sentences.append(env._("You need a saved card to book."))
        return sentences

    @api.model
    def _summary_cancellation_sentences(self, terms, money):
        env = self.env
        sentences = []
        late = self._summary_fee_kind(terms, "late_fee")
        hours = terms.free_cancel_hours
        if late == "none":
            sentences.append(env._("Cancelling is free."))
        elif hours:
            fee = money(terms.late_fee_fixed)
            percent = f"{terms.late_fee_percent:g}"
            sentences.append(
                {
                    "fixed": env._(
                        "Cancelling is free until %(hours)s hours before the start; after that, "
                        "it costs %(fee)s.",
                        hours=hours,
                        fee=fee,
                    ),
                    "percent": env._(
                        "Cancelling is free until %(hours)s hours before the start; after that, "
                        "it costs %(percent)s%% of the session price.",
                        hours=hours,
                        percent=percent,
                    ),
                    "full": env._(
                        "Cancelling is free until %(hours)s hours before the start; after that, "
                        "it costs the full price of the session.",
                        hours=hours,
                    ),
                }[late]
            )
            sentences.append(
                env._(
                    "If you book less than %(hours)s hours ahead, you can still cancel free "
                    "for %(minutes)s minutes after booking.",
                    hours=hours,
                    minutes=terms.cancel_grace_minutes,
                )
                if terms.cancel_grace_minutes
                else env._(
                    "If you book less than %(hours)s hours ahead, cancelling costs this fee "
                    "from the moment you book.",
                    hours=hours,
                )
            )
        else:
            sentences.append(
                {
                    "fixed": env._(
                        "Cancelling is free until the session starts; after that, it costs "
                        "%(fee)s.",
                        fee=money(terms.late_fee_fixed),
                    ),
                    "percent": env._(
                        "Cancelling is free until the session starts; after that, it costs "
                        "%(percent)s%% of the session price.",
                        percent=f"{terms.late_fee_percent:g}",
                    ),
                    "full": env._(
                        "Cancelling is free until the session starts; after that, it costs the "
                        "full price of the session."
                    ),
                }[late]
            )
        missed = self._summary_fee_kind(terms, "no_show_fee")
        delay = terms.no_show_delay_minutes
        if missed == "none":
            sentences.append(env._("Missing a session costs nothing."))
        else:
            sentences.append(
                {
                    "fixed": env._(
                        "If you have not joined %(minutes)s minutes after the start, the "
                        "session counts as missed and costs %(fee)s.",
                        minutes=delay,
                        fee=money(terms.no_show_fee_fixed),
                    ),
                    "percent": env._(
                        "If you have not joined %(minutes)s minutes after the start, the "
                        "session counts as missed and costs %(percent)s%% of the session price.",
                        minutes=delay,
                        percent=f"{terms.no_show_fee_percent:g}",
                    ),
                    "full": env._(
                        "If you have not joined %(minutes)s minutes after the start, the "
                        "session counts as missed and costs the full price of the session.",
                        minutes=delay,
                    ),
                }[missed]
            )
        if late != "none" or missed != "none":
            if terms.waive_first_offence:
                sentences.append(
                    env._("Your first late cancellation or missed session is free of charge.")
                )
            if terms.review_hours:
                sentences.append(
                    env._(
                        "A fee is charged %(hours)s hours after it applies; until then, the "
                        "practice may waive it.",
                        hours=terms.review_hours,
                    )
                )
        return sentences

    @api.model
    def _summary_fee_kind(self, terms, prefix):
        """How a fee reads: ``none`` (nothing to pay), ``fixed``, ``percent`` or ``full``."""
        kind = getattr(terms, f"{prefix}_kind")
        if kind == "fixed" and getattr(terms, f"{prefix}_fixed") > 0:
            return "fixed"
        if kind == "percent" and getattr(terms, f"{prefix}_percent") > 0:
            return "full" if getattr(terms, f"{prefix}_percent") >= 100 else "percent"
        return "none"

    def _reminder_hours(self):
        """Return the reminder offsets in hours, largest first; ``[]`` when not set.

        :raise ValueError: on anything else than comma-separated positive whole numbers.
        """
        self.ensure_one()
        return parse_positive_ints(self.reminder_hours)
