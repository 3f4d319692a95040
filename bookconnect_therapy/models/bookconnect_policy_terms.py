from odoo import api, models

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


class BookconnectPolicyTerms(models.AbstractModel):
    """The billing policy in plain words: the sentences a client reads in the booking
    confirmation, the reminders and the portal.

    A service of its own, like Odoo's ``account.move.send``: the policy holds the options,
    this model says them, each term as one whole sentence to translate.
    """

    _name = "bookconnect.policy.terms"
    _description = "Billing policy in plain words"

    @api.model
    def _sentences(self, terms, money):
        """The sentences of the plain-words summary, in this environment's language.

        Every term is a whole sentence to translate (translators may reorder it), and only
        the terms that apply to these options are said.

        :param terms: the policy, or any object with its fields as attributes (the options in
            ``SUMMARY_FIELDS``).
        :param money: ``money(amount)``, the amount formatted in the policy's currency.
        :return: list of sentences.
        """
        return [
            *self._price_sentences(terms, money),
            *self._payment_sentences(terms, money),
            *self._cancellation_sentences(terms, money),
        ]

    @api.model
    def _price_sentences(self, terms, money):
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
    def _payment_sentences(self, terms, money):
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
    def _cancellation_sentences(self, terms, money):
        env = self.env
        sentences = []
        late = self._fee_kind(terms, "late_fee")
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
        missed = self._fee_kind(terms, "no_show_fee")
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
    def _fee_kind(self, terms, prefix):
        """How a fee reads: ``none`` (nothing to pay), ``fixed``, ``percent`` or ``full``."""
        kind = getattr(terms, f"{prefix}_kind")
        if kind == "fixed" and getattr(terms, f"{prefix}_fixed") > 0:
            return "fixed"
        if kind == "percent" and getattr(terms, f"{prefix}_percent") > 0:
            return "full" if getattr(terms, f"{prefix}_percent") >= 100 else "percent"
        return "none"
